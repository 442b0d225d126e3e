"""Where blocking work runs: the orchestrator's tool threads during a run.

A sync tool runs on the ``LocalExecutor``'s pool. Blocking work a tool starts itself
(``Tool.invoke`` of a sync tool inside a loop body, the ``python`` and ``sql`` builtins)
goes through ``run_sync`` here, which uses the same pool while a run is in flight: one pool
to size and to close, not a second one (``asyncio.to_thread``'s) that nobody owns.
Outside a run (a direct call, a test) it falls back to ``asyncio.to_thread``.

The runner is a context variable set on the run's task, so every step of the run inherits
it at no cost per step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from typing import Any

__all__ = ["SyncRunner", "run_sync", "use_runner"]

#: Runs a blocking callable off the event loop and returns its result.
SyncRunner = Callable[[Callable[[], Any]], Awaitable[Any]]


async def _to_thread(call: Callable[[], Any]) -> Any:
    import asyncio  # here: `tools` is imported by commands that never run anything (validate)

    return await asyncio.to_thread(call)


_runner: ContextVar[SyncRunner] = ContextVar("stepweave_sync_runner", default=_to_thread)


def run_sync(call: Callable[[], Any]) -> Awaitable[Any]:
    """Run ``call`` on the current run's tool threads (``asyncio.to_thread`` outside a run)."""
    return _runner.get()(call)


def use_runner(runner: SyncRunner) -> Token[SyncRunner]:
    """Make ``runner`` the one ``run_sync`` uses in this context (and tasks created from it)."""
    return _runner.set(runner)
