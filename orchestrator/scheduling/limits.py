"""Concurrency caps: one per run, one per tool, and a shared bound for descriptor-heavy tools."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ..fdlimit import FD_HEAVY_TOOLS, fd_concurrency_bound
from ..graph import Task

__all__ = ["LimitTable", "Limits"]


class Limits:
    """Acquire the tool's slot, then a global slot; release in reverse."""

    __slots__ = ("_global", "_tool")

    def __init__(self, tool: asyncio.Semaphore | None, global_: asyncio.Semaphore | None) -> None:
        self._tool = tool
        self._global = global_

    async def __aenter__(self) -> None:
        if self._tool is not None:
            await self._tool.acquire()
        if self._global is not None:
            try:
                await self._global.acquire()
            except BaseException:
                if self._tool is not None:
                    self._tool.release()
                raise

    async def __aexit__(self, *exc: object) -> None:
        if self._global is not None:
            self._global.release()
        if self._tool is not None:
            self._tool.release()


class LimitTable:
    """One run's semaphores; ``for_task`` says which of them a task must hold."""

    __slots__ = ("_fd_limit", "_global", "_tools")

    def __init__(self, max_concurrency: int | None, tool_limits: Mapping[str, int]) -> None:
        self._global = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._tools = {name: asyncio.Semaphore(n) for name, n in tool_limits.items()}
        # Tools that hold descriptors share a default bound derived from RLIMIT_NOFILE
        # unless the user limited them; see orchestrator/fdlimit.py.
        bound = fd_concurrency_bound()
        self._fd_limit = asyncio.Semaphore(bound) if bound is not None else None
        if self._fd_limit is not None:
            for name in FD_HEAVY_TOOLS:
                self._tools.setdefault(name, self._fd_limit)

    def for_task(self, task: Task) -> Limits | None:
        """The caps ``task`` runs under, or ``None`` when nothing caps it (the fast path)."""
        tool_limit = self._tools.get(task.tool)
        if tool_limit is self._fd_limit and not task.is_local:
            tool_limit = None  # on a device, the descriptors are the device's
        if tool_limit is None and self._global is None:
            return None
        return Limits(tool_limit, self._global)
