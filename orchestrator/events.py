"""Typed events: every state change of a run, in the order it happened.

The CLI, the journal, reports and tracing all consume this one stream. Events are small
slotted dataclasses (a run of 10,000 tasks emits ~30,000 of them) and turn into JSON
with ``to_dict()``. Treat them as read-only: they are shared by every consumer. They are
not ``frozen`` because a frozen dataclass costs twice as much to build, and building
events is a measurable share of a no-op task's overhead.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .graph import TaskStatus

if TYPE_CHECKING:
    from .graph import GraphEdit, Task, TaskGraph
    from .result import RunResult, TaskError

__all__ = [
    "Event",
    "GraphEdited",
    "RunEnded",
    "RunResumed",
    "RunStarted",
    "TaskAdded",
    "TaskEnded",
    "TaskProgress",
    "TaskReady",
    "TaskRetrying",
    "TaskStarted",
]


@dataclass(slots=True, kw_only=True)
class Event:
    """Base of all events: which run, and when (``time.time()``)."""

    kind: ClassVar[str] = "event"
    run_id: str
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"event": kind, ...fields}``."""
        out: dict[str, Any] = {"event": self.kind}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, TaskStatus):
        return value.value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    return repr(value)


@dataclass(slots=True, kw_only=True)
class RunStarted(Event):
    """The run began with this graph (more tasks may stream in or be edited in later)."""

    kind: ClassVar[str] = "run_started"
    graph: TaskGraph


@dataclass(slots=True, kw_only=True)
class RunResumed(Event):
    """The run continues from its journal (follows ``RunStarted`` in a resumed run).

    ``restored`` tasks keep the outcome the journal holds and do not run again;
    ``retried`` were running when the run stopped and are dispatched again with the same
    idempotency key; ``interrupted`` were running, are not idempotent, and were failed by
    the in-flight policy instead of being repeated.
    """

    kind: ClassVar[str] = "run_resumed"
    restored: tuple[str, ...] = ()
    retried: tuple[str, ...] = ()
    interrupted: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class TaskAdded(Event):
    """A task joined a running graph (streamed from a planner)."""

    kind: ClassVar[str] = "task_added"
    task: Task


@dataclass(slots=True, kw_only=True)
class GraphEdited(Event):
    """A ``GraphEdit`` was applied to the running graph."""

    kind: ClassVar[str] = "graph_edited"
    edit: GraphEdit


@dataclass(slots=True, kw_only=True)
class TaskReady(Event):
    """Every dependency ended and the join rule and condition hold; waiting for a slot."""

    kind: ClassVar[str] = "task_ready"
    task_id: str


@dataclass(slots=True, kw_only=True)
class TaskStarted(Event):
    """An attempt started (attempt 1 is the first try)."""

    kind: ClassVar[str] = "task_started"
    task_id: str
    attempt: int


@dataclass(slots=True, kw_only=True)
class TaskProgress(Event):
    """A running tool reported progress."""

    kind: ClassVar[str] = "task_progress"
    task_id: str
    attempt: int
    fraction: float | None
    message: str


@dataclass(slots=True, kw_only=True)
class TaskRetrying(Event):
    """An attempt failed with a retryable error; the next starts after ``delay`` seconds."""

    kind: ClassVar[str] = "task_retrying"
    task_id: str
    attempt: int
    error: TaskError
    delay: float


@dataclass(slots=True, kw_only=True)
class TaskEnded(Event):
    """A task reached a terminal state: succeeded, failed, skipped or cancelled."""

    kind: ClassVar[str] = "task_ended"
    task_id: str
    status: TaskStatus
    attempts: int
    output: Any = None
    error: TaskError | None = None


@dataclass(slots=True, kw_only=True)
class RunEnded(Event):
    """The run is over; ``result`` is what ``Orchestrator.run`` returns."""

    kind: ClassVar[str] = "run_ended"
    result: RunResult
