"""The write-ahead gate: a durability ``Barrier`` (the journal) and waiting on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

__all__ = ["Barrier", "after_durable"]

T = TypeVar("T")


class Barrier(Protocol):
    """Durability gate (the journal): ``hold`` a succeeded task until its end is committed.

    The barrier hands held tasks back through the callback given to it by the run, which
    is ``Scheduler.release``; only then are the task's dependents dispatched. ``durable()``
    resolves once everything recorded so far is committed: a non-idempotent task's start
    is made durable before its tool runs, so a resume always knows it may have happened.
    """

    def hold(self, item: Any) -> None: ...

    def durable(self) -> Awaitable[None]: ...


async def after_durable(barrier: Barrier, attempt: Awaitable[T]) -> T:
    """Await ``attempt`` once everything recorded so far (its start too) is committed."""
    try:
        await barrier.durable()
    except BaseException:
        if asyncio.iscoroutine(attempt):
            attempt.close()  # never started: do not warn that it was never awaited
        raise
    return await attempt
