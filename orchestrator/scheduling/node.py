"""``Node``: the run-time state of one task, as the scheduler's hot path reads it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..graph import Task
from ..result import TaskResult

if TYPE_CHECKING:
    from tools import Tool

    from ..executors import Executor
    from ..expressions import Expression
    from .limits import Limits

__all__ = ["Node"]


class Node:
    """Run-time state of one task. ``result.status`` is the only status there is."""

    __slots__ = (
        "blocked_by",
        "children",
        "children_left",
        "condition",
        "dependents",
        "dynamic_args",
        "executor",
        "gated",
        "handle",
        "item",
        "items",
        "kwargs",
        "limits",
        "n_failed",
        "n_ok",
        "n_skipped",
        "needs_approval",
        "offset",
        "parent",
        "propagated",
        "recovered",
        "remaining",
        "result",
        "retries",
        "task",
        "timeout",
        "tool",
        "write_ahead",
    )

    # Effective policy, resolved once by the scheduler's ``_prepare``.
    tool: Tool
    retries: int
    timeout: float | None
    needs_approval: bool
    executor: Executor
    limits: Limits | None
    #: Constant arguments validated once, before the run, for the first attempt.
    kwargs: dict[str, Any] | None
    #: Needs the slow attempt path: approval, retries, or attempts made before a resume.
    gated: bool
    #: Journaled and not idempotent: each attempt's start is committed before the tool runs.
    write_ahead: bool

    def __init__(self, task: Task) -> None:
        self.task = task
        self.result = TaskResult(task.id, task.tool)
        self.dependents: list[Node] = []
        self.remaining = 0
        self.n_ok = 0
        self.n_skipped = 0
        self.n_failed = 0
        self.blocked_by: str | None = None
        self.handle: asyncio.Task[None] | None = None
        self.propagated = False
        self.recovered = False
        self.items: Expression | None = None
        self.parent: Node | None = None
        self.item: Any = None
        self.children: list[Node] = []
        self.children_left = 0
        #: Attempts made before the run was resumed; this run's attempts count on from it.
        self.offset = 0

    def compile(self) -> None:
        """Cache the task's compiled expressions on this node (after a task change too)."""
        # Cached here, on a plain slotted object: reading pydantic private attributes on
        # every dispatch costs more than the rest of a no-op task's bookkeeping.
        task = self.task
        self.condition = task.condition
        self.items = task.items_expression
        self.dynamic_args = tuple((k, v) for k, v in task.compiled_args.items() if not v.is_constant)
