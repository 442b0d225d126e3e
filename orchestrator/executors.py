"""Executors: where a task's tool call actually runs.

The scheduler talks only to this small interface (as httpx's client talks only to a
transport), so local execution and remote devices are two implementations of one thing,
and tests can swap either.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
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


@runtime_checkable
class Executor(Protocol):
    """Runs tool calls. Raising fails the attempt; cancellation must stop the work."""

    async def execute(self, call: ToolCall) -> Any: ...


class LocalExecutor:
    """Runs tools in this process: async tools on the event loop, sync tools in threads.

    A sync tool that overruns its timeout cannot be killed (Python has no way to stop a
    thread); the run moves on and the error says so. Prefer async or subprocess tools for
    work that may hang.
    """

    def __init__(self, *, max_threads: int = 32) -> None:
        self._max_threads = max_threads
        self._pool: ThreadPoolExecutor | None = None

    async def execute(self, call: ToolCall) -> Any:
        tool = call.tool
        if not tool.is_async:
            return await tool.invoke(call.args, call.context, run_sync=self._run_sync)
        # Async tools inline what Tool.invoke does: two coroutine frames fewer per call,
        # which is a fifth of a no-op task's scheduling cost.
        kwargs = tool.validate_arguments(call.args)
        if tool.takes_context:
            result = await tool.func(call.context, **kwargs)
        else:
            result = await tool.func(**kwargs)
        return tool.validate_result(result)

    async def _run_sync(self, fn: Callable[[], Any]) -> Any:
        if self._pool is None:
            # Our own pool: the loop's default one has only cpu+4 workers, which would
            # serialise a fan-out of blocking tools on a 2-core machine.
            self._pool = ThreadPoolExecutor(self._max_threads, thread_name_prefix="stepweave-tool")
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, ctx.run, fn)

    def close(self) -> None:
        """Release idle threads; calls still running in threads finish on their own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
