"""The stepweave engine: task graphs, the scheduler, runs and their events.

See ``orchestrator.errors`` for the exception tree.
"""

from .errors import (
    DeviceError,
    ExpressionError,
    GraphEditError,
    GraphValidationError,
    PlannerError,
    RunCancelled,
    RunError,
    StepweaveError,
    TaskFailed,
    TaskTimeout,
    WorkflowError,
)
from .events import (
    Event,
    GraphEdited,
    RunEnded,
    RunStarted,
    TaskAdded,
    TaskEnded,
    TaskProgress,
    TaskReady,
    TaskRetrying,
    TaskStarted,
)
from .executors import Executor, LocalExecutor, ToolCall
from .graph import DeviceTarget, GraphEdit, LabelsTarget, Target, Task, TaskGraph, TaskStatus
from .result import RunResult, RunStatus, TaskError, TaskResult
from .run import GraphSource, Orchestrator, Run
from .scheduler import Approver, FailurePolicy, Replanner, ReplanRequest

__all__ = [
    "Approver",
    "DeviceError",
    "DeviceTarget",
    "Event",
    "Executor",
    "ExpressionError",
    "FailurePolicy",
    "GraphEdit",
    "GraphEditError",
    "GraphEdited",
    "GraphSource",
    "GraphValidationError",
    "LabelsTarget",
    "LocalExecutor",
    "Orchestrator",
    "PlannerError",
    "ReplanRequest",
    "Replanner",
    "Run",
    "RunCancelled",
    "RunEnded",
    "RunError",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "StepweaveError",
    "Target",
    "Task",
    "TaskAdded",
    "TaskEnded",
    "TaskError",
    "TaskFailed",
    "TaskGraph",
    "TaskProgress",
    "TaskReady",
    "TaskResult",
    "TaskRetrying",
    "TaskStarted",
    "TaskStatus",
    "TaskTimeout",
    "ToolCall",
    "WorkflowError",
]
