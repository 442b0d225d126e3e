"""``wait``: sleep for a duration or until a moment, reporting progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError

__all__ = ["WaitResult", "wait"]

#: Longest pause between two progress reports.
_MAX_TICK_S = 1.0


class WaitResult(BaseModel):
    """How long the call waited."""

    waited_s: float = Field(description="Seconds actually waited.")
    until: datetime = Field(description="The moment the wait ended for (UTC).")


@tool(name="wait", idempotent=True, read_only=True)
async def wait(
    ctx: ToolContext,
    seconds: Annotated[float, Field(ge=0)] | None = None,
    until: datetime | None = None,
) -> WaitResult:
    """Wait for a number of seconds, or until a given time; give exactly one of them.

    Args:
        seconds: How long to wait, in seconds.
        until: ISO 8601 timestamp to wait for, e.g. "2025-01-31T18:00:00Z"; without a UTC
            offset it is local time. A moment in the past returns at once.
    """
    import asyncio  # here, not at the top: `validate` imports this module and waits for nothing

    if (seconds is None) == (until is None):
        given = "both" if seconds is not None else "neither"
        raise ToolError(f"wait needs exactly one of `seconds` or `until`; got {given}", retryable=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    if seconds is not None:
        total = seconds
        if total != total or total == float("inf"):  # NaN, infinity
            raise ToolError(f"seconds must be a finite number, got {seconds}", retryable=False)
        target = datetime.now(UTC).timestamp() + total
        end = datetime.fromtimestamp(target, UTC)
    else:
        assert until is not None
        end = until.astimezone(UTC)  # a naive value is taken as local time
        total = max(end.timestamp() - datetime.now(UTC).timestamp(), 0.0)

    tick = min(max(total / 20, 0.01), _MAX_TICK_S)
    ctx.progress(0.0, f"waiting {total:.3g}s")
    while True:
        if seconds is not None:
            remaining = seconds - (loop.time() - start)
        else:  # follow the wall clock: it is what `until` refers to
            remaining = end.timestamp() - datetime.now(UTC).timestamp()
        if remaining <= 0:
            break
        if total > 0:
            ctx.progress(min(max(1 - remaining / total, 0.0), 1.0), f"{remaining:.3g}s left")
        await asyncio.sleep(min(remaining, tick))
    ctx.progress(1.0, "done")
    return WaitResult(waited_s=loop.time() - start, until=end)
