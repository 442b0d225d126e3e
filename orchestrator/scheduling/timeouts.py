"""A per-attempt timeout, only for tasks that have one (the rest await the tool directly)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..errors import TaskTimeout

if TYPE_CHECKING:
    from ..executors import ToolCall
    from .node import Node

__all__ = ["timed"]


async def timed(node: Node, call: ToolCall) -> Any:
    """Run ``call`` on the node's executor; ``TaskTimeout`` once ``node.timeout`` passes."""
    timeout = node.timeout
    try:
        async with asyncio.timeout(timeout):
            return await node.executor.execute(call)
    except TimeoutError:
        detail = ""
        if not node.tool.is_async and node.task.is_local:
            detail = " (its worker thread cannot be stopped and may still be running)"
        raise TaskTimeout(f"timed out after {timeout:g}s{detail}") from None
