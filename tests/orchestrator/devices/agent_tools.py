"""Tools for agent subprocesses in the fault tests (loaded with ``--tools <this file>``).

``work`` appends ``start``/``end`` lines with its pid to a journal file, so a test can
check which process ran a task and that it finished exactly once.
"""

from __future__ import annotations

import asyncio
import os

from tools import ToolContext, tool


def _journal(path: str, line: str) -> None:
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")


@tool
async def work(ctx: ToolContext, seconds: float, journal: str = "") -> dict[str, int]:
    """Work for ``seconds``, reporting the pid that does it.

    Args:
        seconds: How long the work takes.
        journal: File to append start/end lines to.
    """
    pid = os.getpid()
    _journal(journal, f"start {ctx.task_id} {pid}")
    ctx.progress(0.0, f"started pid={pid}")
    await asyncio.sleep(seconds)
    _journal(journal, f"end {ctx.task_id} {pid}")
    return {"pid": pid}
