"""Executors: where a task's tool call actually runs.

The scheduler talks only to this small interface (as httpx's client talks only to a
transport), so local execution and remote devices are two implementations of one thing,
and tests can swap either.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tools import Tool, ToolContext

from .graph import Task

__all__ = ["Executor", "LocalExecutor", "ToolCall"]


@dataclass(slots=True)
class ToolCall:
    """One attempt of one task: the tool, its rendered arguments and its context."""

    run_id: str
    task: Task
    tool: Tool
    args: dict[str, Any]
    attempt: int
    #: Present only when the tool asked for a ``ToolContext``.
    context: ToolContext | None
    #: True when ``args`` were already validated (and coerced) against the tool's schema.
    validated: bool = False


@runtime_checkable
class Executor(Protocol):
    """Runs tool calls.

    ``execute`` returns an awaitable of the tool's raw result (an ``async def`` method
    does); the scheduler validates it against the tool's declared return type, so every
    executor's results are typed the same way. Raising fails the attempt; cancelling the
    awaitable must stop the work.

    ``aclose`` releases what the executor opened (threads, connections); whoever created
    the executor calls it (the ``Orchestrator`` for the ones it makes). An executor may
    open its resources again on the next ``execute``.
    """

    def execute(self, call: ToolCall) -> Awaitable[Any]: ...

    async def aclose(self) -> None: ...


class LocalExecutor:
    """Runs tools in this process: async tools on the event loop, sync tools in threads.

    A sync tool that overruns its timeout cannot be killed (Python has no way to stop a
    thread); the run moves on and the error says so. Prefer async or subprocess tools for
    work that may hang.
    """

    def __init__(self, *, max_threads: int = 32) -> None:
        self._max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None

    def execute(self, call: ToolCall) -> Awaitable[Any]:
        """Validate the arguments now and return the call's awaitable.

        For an async tool that is the tool's own coroutine: no wrapper frame between the
        scheduler and the tool, which is most of what a no-op task costs.
        """
        tool = call.tool
        kwargs = call.args if call.validated else tool.validate_arguments(call.args)
        func = tool.func
        context = call.context
        if tool.is_async:
            coroutine: Awaitable[Any] = func(context, **kwargs) if tool.takes_context else func(**kwargs)
            return coroutine
        if tool.takes_context:
            return self.run_sync(lambda: func(context, **kwargs))
        return self.run_sync(lambda: func(**kwargs))

    async def run_sync(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on this executor's tool threads (a ``tools.threads.SyncRunner``).

        A run makes it the runner of ``tools.threads.run_sync``, so blocking work a tool
        starts itself shares these threads with the sync tools.
        """
        if self._pool is None:
            # Our own pool: the loop's default one has only cpu+4 workers, which would
            # serialise a fan-out of blocking tools on a 2-core machine.
            self._pool = ThreadPoolExecutor(self._max_threads, thread_name_prefix="stepweave-tool")
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, ctx.run, fn)

    async def aclose(self) -> None:
        """Release the threads: idle ones exit now, calls still running finish on their own.

        Not waited for: a sync tool past its timeout may never return, and closing must not
        hang on it. The next sync call opens a new pool.
        """
        self.close()

    def close(self) -> None:
        """``aclose`` for code without an event loop."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
