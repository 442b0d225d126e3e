"""Property-based: on random DAGs every task runs exactly once, after all of its
dependencies ended, and receives their results intact."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import Orchestrator, Task, TaskGraph
from tools import ToolContext, tool


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[list[int], int]]:
    """Node i gets up to 4 dependencies among nodes < i, and a yield count (0-2)."""
    size = draw(st.integers(min_value=1, max_value=300))
    nodes = []
    for i in range(size):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=4, unique=True)) if i else []
        nodes.append((deps, draw(st.integers(0, 2))))
    return nodes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.sampled_from([None, 1, 3, 16]))
def test_random_dags_run_each_task_once_in_dependency_order(
    nodes: list[tuple[list[int], int]], max_concurrency: int | None
) -> None:
    clock = itertools.count()
    starts: dict[str, list[int]] = {}
    ends: dict[str, int] = {}
    received: dict[str, list[Any]] = {}

    @tool
    async def node(ctx: ToolContext, inputs: list[Any], yields: int) -> dict[str, Any]:
        starts.setdefault(ctx.task_id, []).append(next(clock))
        received[ctx.task_id] = inputs
        for _ in range(yields):
            await asyncio.sleep(0)  # interleave with other branches
        ends[ctx.task_id] = next(clock)
        return {"id": ctx.task_id, "payload": [ctx.task_id] * (len(ctx.task_id) % 3)}

    tasks = [
        Task(
            id=f"n{i}",
            tool="node",
            args={"inputs": [f"${{{{ steps.n{d}.output }}}}" for d in deps], "yields": yields},
        )
        for i, (deps, yields) in enumerate(nodes)
    ]
    result = Orchestrator(tools=[node], max_concurrency=max_concurrency).run_sync(TaskGraph(tasks))

    assert result.ok, result.error
    assert sorted(starts) == sorted(t.id for t in tasks)
    assert all(len(s) == 1 for s in starts.values()), "a task ran more than once"
    for i, (deps, _) in enumerate(nodes):
        me = f"n{i}"
        for d in deps:
            assert starts[me][0] > ends[f"n{d}"], f"{me} started before its dependency n{d} ended"
        assert received[me] == [result.tasks[f"n{d}"].output for d in deps]
        assert result.tasks[me].output == {"id": me, "payload": [me] * (len(me) % 3)}
