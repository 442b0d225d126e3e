"""How runs are run: the public policy types and ``RunPolicy``, which bundles them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from tools import Prompter

from ..graph import GraphEdit, Task, TaskGraph
from ..result import TaskError, TaskResult

__all__ = ["Approver", "FailurePolicy", "ReplanRequest", "Replanner", "RunPolicy"]

#: ``fail_fast`` cancels the rest on the first failure, ``continue`` lets independent
#: branches finish, ``replan`` asks the replanner for a ``GraphEdit``.
FailurePolicy = Literal["fail_fast", "continue", "replan"]


@dataclass(frozen=True, slots=True)
class ReplanRequest:
    """What a replanner sees when a task failed beyond its retries."""

    run_id: str
    graph: TaskGraph
    results: Mapping[str, TaskResult]
    failed_task: str
    error: TaskError


#: Given a failure, return a ``GraphEdit`` to recover, or ``None`` to give up.
Replanner = Callable[[ReplanRequest], Awaitable[GraphEdit | None]]
#: Decides whether a task marked ``needs_approval`` may run.
Approver = Callable[[Task, Mapping[str, Any]], Awaitable[bool]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPolicy:
    """An ``Orchestrator``'s policy for every run it starts: built (and checked) once.

    The fields are the ``Orchestrator`` arguments of the same names; a task's own
    ``timeout``/``retries``/``backoff``, then its tool's, win over the defaults here.
    """

    #: Most steps running at once in a run (``None``: no cap).
    max_concurrency: int | None = None
    #: Most concurrent calls per tool name, e.g. ``{"http": 4}`` (read-only).
    tool_limits: Mapping[str, int] = field(default_factory=dict)
    failure_policy: FailurePolicy = "fail_fast"
    #: Seconds per attempt when neither task nor tool sets one.
    default_timeout: float | None = None
    #: Retries when neither task nor tool sets them.
    default_retries: int = 0
    #: First retry delay in seconds (doubles per retry, with jitter) ...
    default_backoff: float = 0.2
    #: ... up to this many seconds.
    max_backoff: float = 30.0
    approver: Approver | None = None
    #: Asks the operator for the tools (``ctx.prompter``); ``None``: this process's terminal.
    prompter: Prompter | None = None
    replanner: Replanner | None = None
    #: Environment variable names expressions may read as ``env.NAME``.
    env_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.failure_policy not in ("fail_fast", "continue", "replan"):
            raise ValueError(
                f"failure_policy must be 'fail_fast', 'continue' or 'replan', got {self.failure_policy!r}"
            )
        if self.failure_policy == "replan" and self.replanner is None:
            raise ValueError("failure_policy='replan' needs a replanner=")
        for name, limit in self.tool_limits.items():
            if limit < 1:
                raise ValueError(f"tool_limits[{name!r}] must be >= 1, got {limit}")
        # A frozen policy must not share a dict its caller may still change.
        object.__setattr__(self, "tool_limits", MappingProxyType(dict(self.tool_limits)))
        object.__setattr__(self, "env_names", tuple(self.env_names))
