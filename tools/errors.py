"""Errors raised by tool definitions and tool calls.

``tools`` depends on nothing else in stepweave, so it has its own small tree; the
orchestrator converts these at its boundary (a bad definition becomes a ``WorkflowError``,
a failed call a ``TaskFailed``)::

    ToolError                     a tool call failed; ``retryable`` says whether to try again
    ├── ToolArgumentError         arguments did not match the tool's schema (never retried)
    ├── ToolResultError           the return value did not match the declared type (never retried)
    └── ToolNotFoundError         no tool of that name is registered (never retried)
    ToolDefinitionError(TypeError)  a function cannot become a tool (bad signature, duplicate name)

A tool raises ``ToolError("disk full", retryable=False)`` to stop retries of an error
it knows is permanent; any other exception a tool raises is treated as retryable.
"""

from __future__ import annotations

__all__ = [
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolError",
    "ToolNotFoundError",
    "ToolResultError",
]


class ToolError(Exception):
    """A tool call failed. ``retryable`` tells the scheduler whether another attempt may help."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ToolArgumentError(ToolError):
    """The arguments do not match the tool's schema. Retrying cannot fix that."""

    retryable = False


class ToolResultError(ToolError):
    """The tool returned a value that does not match its declared return type."""

    retryable = False


class ToolNotFoundError(ToolError, LookupError):
    """No tool with the requested name is registered."""

    retryable = False


class ToolDefinitionError(TypeError):
    """A function cannot be turned into a tool (for example, a parameter without a type hint)."""
