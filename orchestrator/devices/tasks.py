"""``TaskScope``: the background tasks of one connection, owned by one ``asyncio.TaskGroup``.

The link, the agent and the dispatcher each start short background work (a publish that
must not hold up the message router, a job, the heartbeat loop). Each starts it here, in
the ``TaskGroup`` its ``AsyncExitStack`` entered, so no task outlives its owner and none
is left unawaited. ``stop`` is what Python 3.11's ``TaskGroup`` lacks: give the tasks a
grace period (a cancel message still reaching its device), then cancel the rest and wait
for them, so the group's own exit never hangs on a publish whose connection is gone.

A task started once the scope stops (a message handled while the connection closes) is
born cancelled: its coroutine is closed without running, and nothing waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextvars import Context
from typing import Any, TypeVar

__all__ = ["TaskScope"]

T = TypeVar("T")


class TaskScope:
    """Starts tasks in ``group`` and can stop them all; the group still owns them.

    ``group=None`` is a scope that is already stopped (an owner not connected yet).
    """

    __slots__ = ("_group", "_running", "_stopped")

    def __init__(self, group: asyncio.TaskGroup | None) -> None:
        self._group = group
        self._running: set[asyncio.Task[Any]] = set()
        self._stopped = group is None

    def start(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None, context: Context | None = None
    ) -> asyncio.Task[T]:
        """Start ``coro`` in the group; the group waits for it when its owner closes."""
        if self._stopped or self._group is None:
            task = asyncio.get_running_loop().create_task(coro, name=name, context=context)
            task.cancel()
            return task
        task = self._group.create_task(coro, name=name, context=context)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def stop(self, grace: float = 0.0) -> None:
        """Let running tasks finish for ``grace`` seconds, then cancel the rest and wait for them."""
        self._stopped = True
        if self._running and grace > 0:
            await asyncio.wait(list(self._running), timeout=grace)
        while pending := [task for task in self._running if not task.done()]:
            for task in pending:
                task.cancel()
            # Cancel again if needed: on Python 3.11 aiomqtt (asyncio.wait_for) can swallow
            # a cancellation, and closing must not hang on that.
            await asyncio.wait(pending, timeout=1.0)
