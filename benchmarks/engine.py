"""Running a workload on stepweave: graph building (untimed) and the timed run.

Shared by ``benchmarks.run``, ``benchmarks.memory`` and ``benchmarks.dagbench_adapter`` so
that all three measure stepweave the same way: build the ``TaskGraph``, let
``Orchestrator.start`` validate it before the clock starts, then time ``run.wait()``.
"""

from __future__ import annotations

from time import perf_counter

from orchestrator import Orchestrator, Task, TaskGraph
from tools import Tool, tool

from .recorder import node_body
from .workloads import Workload

__all__ = ["NODE_TOOL", "TOOL_NAME", "build_graph", "run_graph", "run_stepweave"]

TOOL_NAME = "node"

#: The benchmark body as a stepweave tool (arguments and result are validated per call).
NODE_TOOL: Tool = tool(name=TOOL_NAME)(node_body)


def build_graph(workload: Workload) -> TaskGraph:
    """One task per node, calling the ``node`` tool with the node's id and duration.

    Task ids are ``t<index>`` because workload ids may be any string while stepweave ids
    must match a pattern; the node id travels as an argument, so the recorder sees it.
    """
    index = {node["id"]: f"t{i}" for i, node in enumerate(workload["nodes"])}
    return TaskGraph(
        (
            Task(
                id=index[node["id"]],
                tool=TOOL_NAME,
                args={"node_id": node["id"], "duration_s": node["duration_s"]},
                deps=tuple(index[dep] for dep in node["deps"]),
            )
            for node in workload["nodes"]
        ),
        name=workload["name"],
    )


async def run_graph(orchestrator: Orchestrator, graph: TaskGraph) -> float:
    """Validate ``graph`` (untimed), run it, return the makespan; raise if the run failed."""
    run = orchestrator.start(graph)
    t0 = perf_counter()
    async with run:
        result = await run.wait()
    makespan = perf_counter() - t0
    if not result.ok:
        failed = ", ".join(f"{t.id}: {t.error}" for t in result.failed[:3])
        raise RuntimeError(f"stepweave run {result.status}: {result.error or failed}")
    return makespan


async def run_stepweave(workload: Workload, node_tool: Tool = NODE_TOOL) -> float:
    """Build ``workload`` as a graph for a fresh orchestrator and time its run."""
    graph = build_graph(workload)
    return await run_graph(Orchestrator(tools=[node_tool]), graph)
