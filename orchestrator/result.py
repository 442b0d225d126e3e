"""What a run returns: ``RunResult`` with one ``TaskResult`` per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tools import ToolError

from .errors import RunCancelled, RunError, TaskFailed
from .graph import TaskStatus

__all__ = ["RunResult", "RunStatus", "TaskError", "TaskResult"]


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task (or one attempt of it) failed, as data: type name, message, retryable."""

    type: str
    message: str
    retryable: bool
    #: The original exception, for tracebacks in-process; not serialised.
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(cls, exc: BaseException, *, retryable: bool | None = None) -> TaskError:
        if retryable is None:
            retryable = bool(getattr(exc, "retryable", True))
        message = str(exc) or type(exc).__name__
        return cls(type(exc).__name__, message, retryable, exc)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "retryable": self.retryable}

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(slots=True)
class TaskResult:
    """The outcome of one task. Times are ``time.time()`` seconds; ``None`` if it never ran."""

    id: str
    tool: str
    status: TaskStatus = TaskStatus.PENDING
    output: Any = None
    error: TaskError | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    #: Seconds the run was down (stopped, then resumed) between this task's first start and
    #: its end: not the step's own time, so ``duration`` leaves it out.
    paused: float = 0.0

    @property
    def duration(self) -> float | None:
        """Start to end, less the time the run was down in between (``paused``)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at - self.paused

    @property
    def ok(self) -> bool:
        return self.status is TaskStatus.SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "status": self.status.value,
            "output": self.output,
            "error": self.error.to_dict() if self.error else None,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "paused": self.paused,
        }


@dataclass(slots=True)
class RunResult:
    """Per-task outcomes of a run, plus its overall status.

    Like ``httpx.Response``, a failed run is returned, not raised: check ``ok`` or call
    ``raise_for_status()``.
    """

    run_id: str
    status: RunStatus
    tasks: dict[str, TaskResult]
    started_at: float
    ended_at: float
    #: Why the run failed or was cancelled, in one line.
    error: str | None = None
    #: What the planner that produced the run spent (model calls, tokens, seconds, cost),
    #: as ``planners.llm.Usage.to_dict()``; ``None`` for a run no model planned.
    usage: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at

    @property
    def outputs(self) -> dict[str, Any]:
        """Outputs of the tasks that succeeded, by task id."""
        return {tid: t.output for tid, t in self.tasks.items() if t.status is TaskStatus.SUCCEEDED}

    @property
    def failed(self) -> list[TaskResult]:
        return [t for t in self.tasks.values() if t.status is TaskStatus.FAILED]

    def __getitem__(self, task_id: str) -> TaskResult:
        return self.tasks[task_id]

    def raise_for_status(self) -> RunResult:
        """Raise ``TaskFailed`` (or ``RunCancelled``/``RunError``) unless the run succeeded."""
        if self.status is RunStatus.SUCCEEDED:
            return self
        if self.status is RunStatus.CANCELLED:
            raise RunCancelled(self.error or "run cancelled")
        for task in self.failed:
            error = task.error
            cause = error.exception if error else None
            exc = TaskFailed(task.id, str(error) if error else "unknown error")
            if isinstance(cause, BaseException):
                raise exc from cause
            raise exc
        raise RunError(self.error or "run failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status.value,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "tasks": {tid: t.to_dict() for tid, t in self.tasks.items()},
            **({"usage": self.usage} if self.usage is not None else {}),
        }


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt may help: explicit ``retryable`` wins, definitions never."""
    from pydantic import ValidationError

    from .errors import WorkflowError

    if not isinstance(exc, Exception) or isinstance(exc, (WorkflowError, ValidationError)):
        return False
    if isinstance(exc, ToolError):
        return exc.retryable
    return bool(getattr(exc, "retryable", True))
