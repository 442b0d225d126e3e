"""Serve until SIGTERM or SIGINT, then return normally so ``async with`` blocks clean up.

Python's default SIGTERM handler ends the process at once: no ``finally`` runs, so a
broker's Mosquitto child would be orphaned and an agent would vanish without saying
"offline". Long-running commands serve through :func:`until_signalled` instead.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable

__all__ = ["until_signalled"]


async def until_signalled(work: Awaitable[object], *, handle_signals: bool = True) -> None:
    """Await ``work``; SIGTERM/SIGINT cancel it and this returns instead of raising."""
    serving = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    # Signal handlers can only be installed from the main thread.
    if handle_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, serving.cancel)
            installed.append(signum)
    try:
        await serving
    except asyncio.CancelledError:
        if not serving.cancelled():
            raise
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # we were cancelled ourselves, not by a signal
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        if not serving.done():
            serving.cancel()
