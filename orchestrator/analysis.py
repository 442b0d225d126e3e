"""Graph analysis for reports and planning (networkx; never on the scheduler's hot path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from .graph import TaskGraph

__all__ = ["critical_path", "layers", "to_networkx", "width"]


def to_networkx(graph: TaskGraph) -> Any:
    """A ``networkx.DiGraph`` with an edge dependency → dependent for every dependency."""
    g = nx.DiGraph()
    for task in graph:
        g.add_node(task.id, tool=task.tool)
    for task in graph:
        for dep in task.dependencies:
            if dep in graph:
                g.add_edge(dep, task.id)
    return g


def layers(graph: TaskGraph) -> list[list[str]]:
    """Topological layers: each task sits one layer after its deepest dependency."""
    return [sorted(layer) for layer in nx.topological_generations(to_networkx(graph))]


def width(graph: TaskGraph) -> int:
    """The size of the widest topological layer (a lower bound on useful parallelism)."""
    return max((len(layer) for layer in layers(graph)), default=0)


def critical_path(graph: TaskGraph, durations: Mapping[str, float] | None = None) -> tuple[list[str], float]:
    """The longest dependency chain and its length.

    With ``durations`` (seconds per task id, e.g. from a ``RunResult``) the length is
    time; without, every task weighs 1 and the length is the number of tasks.
    """
    g = to_networkx(graph)
    if g.number_of_nodes() == 0:
        return [], 0.0
    weight = {tid: (durations or {}).get(tid, 0.0 if durations else 1.0) for tid in g.nodes}
    # Longest path by node weight: dynamic programming over a topological order.
    best: dict[str, float] = {}
    previous: dict[str, str | None] = {}
    for tid in nx.topological_sort(g):
        preds = list(g.predecessors(tid))
        parent = max(preds, key=lambda p: best[p], default=None)
        best[tid] = weight[tid] + (best[parent] if parent is not None else 0.0)
        previous[tid] = parent
    end = max(best, key=lambda t: best[t])
    path: list[str] = []
    node: str | None = end
    while node is not None:
        path.append(node)
        node = previous[node]
    path.reverse()
    return path, best[end]
