"""The exception tree of stepweave.

Two families, kept apart as pydantic-ai keeps ``UserError`` and ``AgentRunError``:
a ``WorkflowError`` means the input is wrong and the user must fix it before anything
runs; a ``RunError`` means something failed while running. A ``JournalError`` is neither:
the durable record of runs (``orchestrator.journal``) is missing, damaged or foreign::

    StepweaveError
    ├── WorkflowError(ValueError)       bad definition: fix the input
    │   ├── GraphValidationError         unknown dependency or tool, cycle, duplicate id,
    │   │                                invalid arguments; ``.problems`` lists them all
    │   ├── ExpressionError              a ``${{ … }}`` that does not parse or names
    │   │                                something that does not exist
    │   ├── GraphEditError               an edit rejected whole; the graph is unchanged
    │   ├── WorkflowFileError            planners.workflow: a YAML file's problems, with lines
    │   ├── GuideError                   planners.tsg: a runbook that cannot be compiled
    │   └── LLMConfigError               planners.llm: no model server configured (how to fix)
    ├── RunError(RuntimeError)          failed while running
    │   ├── TaskFailed                   a task failed beyond its retries (``.task_id``)
    │   ├── TaskTimeout(TimeoutError)    one attempt ran past its timeout (retryable)
    │   ├── RunCancelled                 the run was cancelled before it finished
    │   ├── PlannerError                 the planner (LLM, joiner) failed
    │   └── DeviceError                  a remote device failed, vanished or misbehaved
    │       ├── BrokerConnectionError     the MQTT broker cannot be reached or refused us
    │       ├── DeviceUnavailable         no live device can run the task (says why each not)
    │       ├── MessageRejected           a message cannot be sent as the protocol requires
    │       └── RemoteTaskError           the tool failed on the device (carries its error)
    └── JournalError                    the run journal cannot be used (names the file)
        ├── JournalCorrupt               not a journal, damaged or truncated
        ├── JournalVersionError          written by another format version: never misread
        ├── RunNotFound(LookupError)     no run with that id in the journal
        └── ResumeError                  the run cannot be resumed (finished, still running)

The subclasses defined elsewhere (``orchestrator.devices.errors``, ``planners.*``) are
listed here so the whole tree is in one place. Errors of other libraries are converted
at the boundary (``raise PlannerError(…) from exc``).

A task that failed without an exception naming it (cancelled, not approved, a failed
dependency, ...) carries an ``ErrorKind`` as its ``TaskError.type``; the kinds are one
``StrEnum`` equal to their strings, so journals and JSON written before read the same.

Every error survives a process boundary (workers, devices, ``multiprocessing``): one whose
``__init__`` takes other arguments than the message defines ``__reduce__`` to be rebuilt
from them, as pydantic-ai's do (tests/test_exceptions.py round-trips each exported one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

__all__ = [
    "DeviceError",
    "ErrorKind",
    "ExpressionError",
    "GraphEditError",
    "GraphValidationError",
    "JournalCorrupt",
    "JournalError",
    "JournalVersionError",
    "PlannerError",
    "ResumeError",
    "RunCancelled",
    "RunError",
    "RunNotFound",
    "StepweaveError",
    "TaskFailed",
    "TaskTimeout",
    "WorkflowError",
]


class ErrorKind(StrEnum):
    """The ``TaskError.type`` of a failure no exception class names (others carry the class name).

    Each member equals its string (``ErrorKind.CANCELLED == "Cancelled"``): journals, JSON
    output and code that compares plain strings keep working.
    """

    #: Running when the run stopped, not idempotent: not repeated on resume (``--retry-inflight``).
    INTERRUPTED = "Interrupted"
    #: Cancelled before or while it ran (the run was cancelled, or its device was told to stop).
    CANCELLED = "Cancelled"
    #: Not run: a dependency did not succeed.
    UPSTREAM_FAILED = "UpstreamFailed"
    #: A ``for_each`` step whose list could not be made.
    FOR_EACH_ERROR = "ForEachError"
    #: A ``for_each`` step one of whose items failed.
    ITEM_FAILED = "ItemFailed"
    #: A ``needs_approval`` step the approver refused.
    APPROVAL_DENIED = "ApprovalDenied"
    #: A device ran the tool but its result cannot be sent (too large, not JSON).
    RESULT_NOT_SENDABLE = "ResultNotSendable"
    #: A device refused the task: it holds as many as it takes.
    DEVICE_BUSY = "DeviceBusy"
    #: A device refused the task: it is shutting down.
    DEVICE_STOPPING = "DeviceStopping"
    #: A failure that came without any exception.
    UNKNOWN = "Error"


def rebuild(cls: type[BaseException], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> BaseException:
    """Unpickle an exception whose constructor takes keyword-only arguments (``__reduce__``)."""
    return cls(*args, **kwargs)


class StepweaveError(Exception):
    """Base of every error stepweave raises on purpose."""


class WorkflowError(StepweaveError, ValueError):
    """The definition is wrong (bad graph, unknown tool, bad expression): fix the input."""


class GraphValidationError(WorkflowError):
    """A graph failed validation; ``problems`` holds every problem found, not just the first."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{head}invalid graph: {self.problems[0]}"
        else:
            listing = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{head}invalid graph ({len(self.problems)} problems):\n{listing}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # From the problems, not the message: Exception's own reduce would pass the
        # rendered text as ``problems`` and list it back one character per problem.
        return (rebuild, (type(self), (self.problems,), {"source": self.source}), vars(self))


class ExpressionError(WorkflowError):
    """A ``${{ … }}`` expression is malformed or refers to something that does not exist."""


class GraphEditError(WorkflowError):
    """A ``GraphEdit`` was rejected; nothing of it was applied."""


class RunError(StepweaveError, RuntimeError):
    """Something failed while a run was in flight."""


class TaskFailed(RunError):
    """A task failed beyond its retries."""

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        #: Why it failed, without the ``task 'x' failed:`` prefix.
        self.reason = message
        super().__init__(f"task {task_id!r} failed: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_id, self.reason), vars(self))


class TaskTimeout(RunError, TimeoutError):
    """One attempt of a task ran past its timeout. Retryable: the next attempt may be faster."""

    retryable = True


class RunCancelled(RunError):
    """The run was cancelled before it finished."""


class PlannerError(RunError):
    """The planner or joiner failed (API error, unusable output after repairs)."""


class DeviceError(RunError):
    """A remote device failed, went silent, or sent something it should not have."""


class JournalError(StepweaveError):
    """The run journal cannot be read or written; the message names the file."""


class JournalCorrupt(JournalError):
    """The file is not a stepweave journal, or it is damaged or truncated."""


class JournalVersionError(JournalError):
    """The journal was written by another format version; it is rejected, never misread."""


class RunNotFound(JournalError, LookupError):
    """No run with this id in the journal."""

    def __init__(self, run_id: str, path: str) -> None:
        self.run_id = run_id
        #: The journal that was searched.
        self.path = path
        super().__init__(f"{path}: no run with id {run_id!r} (see `stepweave runs list`)")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.path), vars(self))

    def __str__(self) -> str:
        # LookupError would quote the message like a KeyError does.
        return str(self.args[0])


class ResumeError(JournalError):
    """The run cannot be resumed: it already succeeded, or it is still running elsewhere."""
