"""A read-only tool for agent subprocesses (``--tools <this file>``): the planner tests."""

from __future__ import annotations

import os

from orchestrator.devices import current_device
from tools import tool


@tool(read_only=True)
def probe() -> dict[str, str]:
    """Say which device this runs on and its process id (changes nothing)."""
    return {"device": current_device() or "", "pid": str(os.getpid())}
