"""Tools with visible side effects for the crash tests (loaded by ``--tools`` and children).

Every effect is a line appended to the file named by ``$STEPWEAVE_TEST_EFFECTS``, so a
test can count how often each step really ran, across processes and crashes.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tools import ToolContext, tool


def _effects() -> Path:
    return Path(os.environ["STEPWEAVE_TEST_EFFECTS"])


def _append(line: str) -> None:
    # One write() of a short line on an O_APPEND file: lines never interleave.
    with _effects().open("a", encoding="utf-8") as file:
        file.write(line + "\n")


@tool
def mark(ctx: ToolContext, name: str) -> str:
    """A step with a side effect and no protection against repeats."""
    _append(f"{name} {ctx.idempotency_key}")
    return name


@tool(idempotent=True)
async def slow_mark(ctx: ToolContext, name: str) -> str:
    """An idempotent step: its effect is keyed, so a repeat finds it done and skips it.

    It then waits for ``$STEPWEAVE_TEST_RELEASE`` to exist: the crash test kills the
    process while it waits; after the resume, the file exists and it returns at once.
    """
    key = ctx.idempotency_key
    lines = _effects().read_text(encoding="utf-8").splitlines() if _effects().exists() else []
    if f"{name} {key}" not in lines:
        _append(f"{name} {key}")
    release = Path(os.environ["STEPWEAVE_TEST_RELEASE"])
    for _ in range(600):  # 30 s at most: a test that forgets to kill us must not hang
        if release.exists():  # noqa: ASYNC240 - a stat of a local file, in a test tool
            return name
        await asyncio.sleep(0.05)
    raise TimeoutError("never released")


@tool(idempotent=False)
async def slow_plain(ctx: ToolContext, name: str) -> str:
    """Like ``slow_mark``, but with no idempotency key and marked ``idempotent=False``.

    Marked, not just unmarked: only then is its start committed before it runs (write-ahead),
    so a kill right after it started still leaves it in flight in the journal. An unmarked
    tool's start rides the next group commit (see docs/durability.md), and a test killing in
    that window would see the step repeated.
    """
    _append(f"{name} {ctx.idempotency_key}")
    release = Path(os.environ["STEPWEAVE_TEST_RELEASE"])
    for _ in range(600):
        if release.exists():  # noqa: ASYNC240 - a stat of a local file, in a test tool
            return name
        await asyncio.sleep(0.05)
    raise TimeoutError("never released")
