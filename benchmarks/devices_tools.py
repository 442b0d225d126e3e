"""The tool the device benchmark's agents offer (loaded by path with ``--tools``)."""

from __future__ import annotations

import asyncio

from tools import tool


@tool
async def noop(duration_s: float = 0.0) -> None:
    """Do nothing (or sleep ``duration_s``, a workload node's simulated latency)."""
    if duration_s:
        await asyncio.sleep(duration_s)
