"""stepweave as a system of the shared dagbench harness (WORKLOADS.md, "Adapter interface").

    # from the repository root, with the harness checked out at ../shared/bench
    REPO=$PWD && cd ../shared/bench && PYTHONPATH=$REPO:. $REPO/.venv/bin/python -m dagbench.bench \\
        run --systems asyncio_readyq,benchmarks.dagbench_adapter:run --workloads 'layered-*'

Only this module imports the harness (``dagbench.tasks``, on the path when the harness
runs it): every node calls the harness's own ``async_task`` so the harness records and
verifies the run itself. The graph is built and validated before the clock starts, and
nothing is reused between calls except the tool definition.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dagbench.tasks import async_task

from orchestrator import Orchestrator
from tools import tool

from .engine import TOOL_NAME, build_graph, run_graph
from .workloads import Workload

__all__ = ["run"]


@tool(name=TOOL_NAME)
async def _node(node_id: str, duration_s: float) -> str:
    """The harness's simulated tool call, as a stepweave tool."""
    result: str = await async_task(node_id, duration_s)
    return result


def run(workload: dict[str, Any]) -> float:
    """Run every node of ``workload`` once on stepweave; return the makespan in seconds."""
    wl: Workload = workload  # type: ignore[assignment]  # the harness passes the same JSON shape

    async def main() -> float:
        graph = build_graph(wl)  # untimed, like validation inside run_graph
        return await run_graph(Orchestrator(tools=[_node]), graph)

    return asyncio.run(main())
