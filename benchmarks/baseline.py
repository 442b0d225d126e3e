"""The plain-asyncio baseline: the least a dataflow executor can do in CPython.

One ``asyncio.Task`` per node, created in topological order; each awaits its
dependencies' tasks, then runs the node body. No validation, no events, no results kept
beyond the tasks themselves. stepweave is measured against this, in the same process and
on the same workloads, so machine speed cancels out of the ratios.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from time import perf_counter

from .recorder import NodeBody, node_body
from .workloads import Workload

__all__ = ["run_baseline"]


async def _node(node_id: str, duration_s: float, deps: Sequence[asyncio.Task[str]], body: NodeBody) -> str:
    for dep in deps:
        await dep
    return await body(node_id, duration_s)


async def run_baseline(workload: Workload, body: NodeBody = node_body) -> float:
    """Run every node of ``workload`` once, after its deps; return the makespan in seconds.

    The clock includes creating the tasks, as stepweave's includes its own start-up:
    both are handed the same list of nodes and timed until the last one has ended.
    """
    nodes = workload["nodes"]
    create = asyncio.create_task
    t0 = perf_counter()
    tasks: dict[str, asyncio.Task[str]] = {}
    for node in nodes:
        deps = [tasks[dep] for dep in node["deps"]]
        tasks[node["id"]] = create(_node(node["id"], node["duration_s"], deps, body))
    for task in tasks.values():
        await task
    return perf_counter() - t0
