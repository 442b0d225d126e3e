"""The stepweave engine: task graphs, the scheduler, runs and their events.

See ``orchestrator.errors`` for the exception tree, ``orchestrator.journal`` for durable runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        DeviceError,
        ErrorKind,
        ExpressionError,
        GraphEditError,
        GraphValidationError,
        JournalCorrupt,
        JournalError,
        JournalVersionError,
        PlannerError,
        ResumeError,
        RunCancelled,
        RunError,
        RunNotFound,
        StepweaveError,
        TaskFailed,
        TaskTimeout,
        WorkflowError,
    )
    from .events import (
        Event,
        GraphEdited,
        RunEnded,
        RunResumed,
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
    from .journal import Journal
    from .result import RunResult, RunStatus, TaskError, TaskResult
    from .run import GraphSource, InflightPolicy, Orchestrator, Run
    from .scheduler import Approver, FailurePolicy, Replanner, ReplanRequest, RunPolicy

__all__ = [
    "Approver",
    "DeviceError",
    "DeviceTarget",
    "ErrorKind",
    "Event",
    "Executor",
    "ExpressionError",
    "FailurePolicy",
    "GraphEdit",
    "GraphEditError",
    "GraphEdited",
    "GraphSource",
    "GraphValidationError",
    "InflightPolicy",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalVersionError",
    "LabelsTarget",
    "LocalExecutor",
    "Orchestrator",
    "PlannerError",
    "ReplanRequest",
    "Replanner",
    "ResumeError",
    "Run",
    "RunCancelled",
    "RunEnded",
    "RunError",
    "RunNotFound",
    "RunPolicy",
    "RunResult",
    "RunResumed",
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

# Imported on first use: `import orchestrator` (and so every command of the CLI) must
# not pay for the scheduler, the journal and the events when it needs one class.
_LAZY = {
    "Approver": ".scheduler",
    "DeviceError": ".errors",
    "DeviceTarget": ".graph",
    "ErrorKind": ".errors",
    "Event": ".events",
    "Executor": ".executors",
    "ExpressionError": ".errors",
    "FailurePolicy": ".scheduler",
    "GraphEdit": ".graph",
    "GraphEditError": ".errors",
    "GraphEdited": ".events",
    "GraphSource": ".run",
    "GraphValidationError": ".errors",
    "InflightPolicy": ".run",
    "Journal": ".journal",
    "JournalCorrupt": ".errors",
    "JournalError": ".errors",
    "JournalVersionError": ".errors",
    "LabelsTarget": ".graph",
    "LocalExecutor": ".executors",
    "Orchestrator": ".run",
    "PlannerError": ".errors",
    "ReplanRequest": ".scheduler",
    "Replanner": ".scheduler",
    "ResumeError": ".errors",
    "Run": ".run",
    "RunCancelled": ".errors",
    "RunEnded": ".events",
    "RunError": ".errors",
    "RunNotFound": ".errors",
    "RunPolicy": ".scheduler",
    "RunResult": ".result",
    "RunResumed": ".events",
    "RunStarted": ".events",
    "RunStatus": ".result",
    "StepweaveError": ".errors",
    "Target": ".graph",
    "Task": ".graph",
    "TaskAdded": ".events",
    "TaskEnded": ".events",
    "TaskError": ".result",
    "TaskFailed": ".errors",
    "TaskGraph": ".graph",
    "TaskProgress": ".events",
    "TaskReady": ".events",
    "TaskResult": ".result",
    "TaskRetrying": ".events",
    "TaskStarted": ".events",
    "TaskStatus": ".graph",
    "TaskTimeout": ".errors",
    "ToolCall": ".executors",
    "WorkflowError": ".errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
