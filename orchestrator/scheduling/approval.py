"""The approval gate: a ``needs_approval`` task runs only once the approver says yes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ErrorKind
from ..result import TaskError
from .node import Node
from .policy import Approver

__all__ = ["ApprovalRefused", "check_approval"]


class ApprovalRefused(Exception):
    """Carries the task's final ``TaskError`` (denied, or no approver) to the scheduler."""

    def __init__(self, error: TaskError) -> None:
        super().__init__(error.message)
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.error,))


async def check_approval(
    node: Node, approver: Approver | None, render_args: Callable[[Node], Mapping[str, Any]]
) -> None:
    """Ask ``approver``, showing it the arguments as they will run (rendered)."""
    task = node.task
    if approver is None:
        raise ApprovalRefused(
            TaskError(
                "ApprovalRequired",
                f"task {task.id!r} needs approval and no approver is configured "
                "(pass approver= to the Orchestrator, or --yes on the command line)",
                False,
            )
        )
    # Rendering may fail (a bad expression): that fails the task before anyone is asked.
    args = render_args(node) if node.dynamic_args else task.args
    if not await approver(task, args):
        raise ApprovalRefused(
            TaskError(ErrorKind.APPROVAL_DENIED, f"task {task.id!r} was not approved", False)
        )
