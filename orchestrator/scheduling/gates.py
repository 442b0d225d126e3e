"""The slow attempt path, for the tasks that need it (``Node.gated``).

A task is gated when it needs approval, may retry, is journaled without being idempotent
(write-ahead), or made attempts before a resume. Every other task skips this module: the
scheduler awaits its tool directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..events import Event, TaskRetrying
from ..result import TaskError
from .approval import check_approval
from .durability import Barrier, after_durable
from .node import Node
from .policy import RunPolicy
from .retries import with_retries

__all__ = ["Gates"]


class Gates:
    """Approval first, then each attempt (after write-ahead), retried as the task allows."""

    __slots__ = ("_attempt", "_barrier", "_emit", "_policy", "_render_args", "_run_id")

    def __init__(
        self,
        *,
        run_id: str,
        policy: RunPolicy,
        emit: Callable[[Event], None],
        barrier: Barrier | None,
        attempt: Callable[[Node, int], Awaitable[Any]],
        render_args: Callable[[Node], Mapping[str, Any]],
    ) -> None:
        self._run_id = run_id
        self._policy = policy
        self._emit = emit
        self._barrier = barrier
        #: Starts one attempt (the scheduler's, shared with the fast path).
        self._attempt = attempt
        self._render_args = render_args

    async def attempts(self, node: Node) -> Any:
        """Every attempt of a gated task; its output, or its last attempt's error raised."""
        if node.needs_approval:
            await check_approval(node, self._policy.approver, self._render_args)
        if node.retries == 0:
            return await self._one(node, 1 + node.offset)
        task = node.task
        backoff = task.backoff if task.backoff is not None else node.tool.backoff
        if backoff is None:
            backoff = self._policy.default_backoff
        return await with_retries(
            node, self._one, backoff=backoff, max_backoff=self._policy.max_backoff, on_retry=self._retrying
        )

    async def _one(self, node: Node, attempt: int) -> Any:
        awaitable = self._attempt(node, attempt)
        if node.write_ahead:
            assert self._barrier is not None
            return await after_durable(self._barrier, awaitable)
        return await awaitable

    def _retrying(self, node: Node, attempt: int, error: TaskError, delay: float) -> None:
        self._emit(
            TaskRetrying(run_id=self._run_id, task_id=node.task.id, attempt=attempt, error=error, delay=delay)
        )
