"""Seeded DAG workloads in the shared WORKLOADS.md JSON format.

We generate our own workloads (rather than importing the shared harness) so the suite runs
from this repository alone; the format is the same, so a file written by
``python -m benchmarks.workloads DIR`` can also be fed to the shared harness.

A workload is a dict ``{"name", "shape", "profile", "seed", "params", "nodes", "meta"}``;
``nodes`` are in topological order, each ``{"id", "duration_s", "deps"}``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

import networkx as nx

__all__ = [
    "PROFILES",
    "SHAPES",
    "Node",
    "Workload",
    "critical_path_s",
    "make",
    "metrics",
    "standard_suite",
]


class Node(TypedDict):
    """One simulated tool call: it sleeps ``duration_s`` after every id in ``deps`` ended."""

    id: str
    duration_s: float
    deps: list[str]


class Workload(TypedDict):
    """A named DAG plus how it was generated and its derived metrics."""

    name: str
    shape: str
    profile: str
    seed: int
    params: dict[str, int]
    nodes: list[Node]
    meta: dict[str, float | int]


#: The structure of a workload before durations are drawn: (id, deps) in topological order.
Structure = list[tuple[str, list[str]]]

PROFILES = ("noop", "fixed50ms", "uniform10-200ms")

#: Standard layered sizes: total nodes -> (layers, width).
LAYERED_SIZES = {10: (5, 2), 100: (10, 10), 1000: (20, 50), 10000: (50, 200)}


# -- shapes ---------------------------------------------------------------------------


def fanout(n: int, rng: random.Random) -> tuple[Structure, dict[str, int]]:
    """One source, ``n - 2`` parallel nodes, one join: the widest possible DAG."""
    if n < 3:
        raise ValueError(f"fanout needs at least 3 nodes, got {n}")
    middle = [f"m{i}" for i in range(n - 2)]
    structure: Structure = [("src", [])]
    structure += [(m, ["src"]) for m in middle]
    structure.append(("join", middle))
    return structure, {"n": n, "width": n - 2}


def layered(n: int, rng: random.Random) -> tuple[Structure, dict[str, int]]:
    """``layers x width`` nodes; each node after layer 0 depends on 1-3 earlier nodes.

    One dependency always comes from the layer just before, so layer k is exactly the
    k-th topological level: the DAG is as deep as it has layers, and as wide as ``width``.
    """
    layers, width = LAYERED_SIZES.get(n, (0, 0))
    if not layers:
        raise ValueError(f"layered sizes are {sorted(LAYERED_SIZES)}, got {n}")
    ids = [[f"l{k}_{i}" for i in range(width)] for k in range(layers)]
    structure: Structure = [(node_id, []) for node_id in ids[0]]
    for k in range(1, layers):
        earlier = k * width  # nodes in layers 0..k-1, numbered layer by layer
        for i in range(width):
            chosen = [(k - 1) * width + rng.randrange(width)]
            wanted = rng.randint(1, 3)
            while len(chosen) < min(wanted, earlier):
                pick = rng.randrange(earlier)
                if pick not in chosen:
                    chosen.append(pick)
            structure.append((ids[k][i], [ids[c // width][c % width] for c in chosen]))
    return structure, {"n": n, "layers": layers, "width": width}


def chain(n: int, rng: random.Random) -> tuple[Structure, dict[str, int]]:
    """``c0 -> c1 -> ...``: no parallelism, so every step pays one full dispatch."""
    return [(f"c{i}", [f"c{i - 1}"] if i else []) for i in range(n)], {"n": n}


def llmcompiler(k: int, rng: random.Random) -> tuple[Structure, dict[str, int]]:
    """An LLMCompiler-style plan: ``k`` tool calls, then a join on all of them.

    Call i uses the output of each earlier call j with probability 0.3 (a ``$j`` argument
    in the planner's output), which gives the irregular shallow DAGs such planners emit.
    """
    structure: Structure = []
    for i in range(1, k + 1):
        structure.append((f"tool{i}", [f"tool{j}" for j in range(1, i) if rng.random() < 0.3]))
    structure.append(("join", [f"tool{i}" for i in range(1, k + 1)]))
    return structure, {"tool_calls": k}


def tsg(n: int, rng: random.Random) -> tuple[Structure, dict[str, int]]:
    """A 20-step troubleshooting plan: start, collect, two branches of 8, consolidate, end.

    Branch A forks and merges once inside (a2 -> a3a | a3b -> a4); branch B is sequential.
    """
    branch_a: Structure = [
        ("a1", ["collect"]),
        ("a2", ["a1"]),
        ("a3a", ["a2"]),
        ("a3b", ["a2"]),
        ("a4", ["a3a", "a3b"]),
        ("a5", ["a4"]),
        ("a6", ["a5"]),
        ("a7", ["a6"]),
    ]
    branch_b: Structure = [(f"b{i}", [f"b{i - 1}" if i > 1 else "collect"]) for i in range(1, 9)]
    structure: Structure = [("start", []), ("collect", ["start"]), *branch_a, *branch_b]
    structure += [("consolidate", ["a7", "b8"]), ("end", ["consolidate"])]
    return structure, {"steps": len(structure), "branches": 2}


ShapeFn = Callable[[int, random.Random], tuple[Structure, dict[str, int]]]
SHAPES: dict[str, ShapeFn] = {
    "fanout": fanout,
    "layered": layered,
    "chain": chain,
    "llmcompiler": llmcompiler,
    "tsg": tsg,
}
#: Size used when ``make`` is not given one (the shape has a single standard size).
DEFAULT_SIZES = {"llmcompiler": 8, "tsg": 20}


# -- durations and metrics ------------------------------------------------------------


def _durations(profile: str, rng: random.Random) -> Callable[[], float]:
    if profile == "noop":
        return lambda: 0.0
    if profile == "fixed50ms":
        return lambda: 0.050
    if profile == "uniform10-200ms":
        return lambda: round(rng.uniform(0.010, 0.200), 4)
    raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")


def _digraph(nodes: Sequence[Node]) -> nx.DiGraph:
    """Edges weighted by the duration of their source, plus a sink after every node.

    The sink turns node weights into edge weights, so the longest path to it is the
    critical path including the last node's own duration.
    """
    duration = {node["id"]: node["duration_s"] for node in nodes}
    graph = nx.DiGraph()
    sink = object()
    for node in nodes:
        graph.add_edge(node["id"], sink, weight=node["duration_s"])
        for dep in node["deps"]:
            graph.add_edge(dep, node["id"], weight=duration[dep])
    return graph


def critical_path_s(nodes: Sequence[Node]) -> float:
    """The longest path through the DAG, summing node durations: no executor beats it."""
    return float(nx.dag_longest_path_length(_digraph(nodes), weight="weight"))


def metrics(nodes: Sequence[Node]) -> dict[str, float | int]:
    """Derived figures stored as ``meta``: critical path, node and edge counts, levels."""
    graph = nx.DiGraph()
    graph.add_nodes_from(n["id"] for n in nodes)
    graph.add_edges_from((d, n["id"]) for n in nodes for d in n["deps"])
    return {
        "critical_path_s": round(critical_path_s(nodes), 6),
        "nodes": len(nodes),
        "edges": graph.number_of_edges(),
        "levels": sum(1 for _ in nx.topological_generations(graph)),
    }


# -- building -------------------------------------------------------------------------


def make(shape: str, profile: str, n: int | None = None, seed: int = 1, *, meta: bool = True) -> Workload:
    """The workload ``shape``/``profile`` of ``n`` nodes (the shape's default if omitted).

    Structure and durations come from separate seeded generators, so the same shape and
    size has the same edges under every profile. ``meta=False`` skips the networkx
    metrics (left empty), whose transient memory would distort an RSS measurement.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {sorted(SHAPES)}")
    size = n if n is not None else DEFAULT_SIZES.get(shape)
    if size is None:
        raise ValueError(f"shape {shape!r} needs a size")
    structure, params = SHAPES[shape](size, random.Random(f"shape:{shape}:{size}:{seed}"))
    draw = _durations(profile, random.Random(f"durations:{shape}:{size}:{profile}:{seed}"))
    nodes: list[Node] = [{"id": nid, "duration_s": draw(), "deps": deps} for nid, deps in structure]
    suffix = f"-s{seed}" if seed != 1 else ""
    return {
        "name": f"{shape}-n{len(nodes)}-{profile}{suffix}",
        "shape": shape,
        "profile": profile,
        "seed": seed,
        "params": params,
        "nodes": nodes,
        "meta": metrics(nodes) if meta else {},
    }


def standard_suite() -> list[Workload]:
    """Every shape x profile at the sizes WORKLOADS.md lists."""
    sizes: dict[str, list[int | None]] = {
        "fanout": [10, 100, 1000, 10000],
        "layered": [10, 100, 1000, 10000],
        "chain": [10, 100, 1000, 10000],
        "llmcompiler": [None],
        "tsg": [None],
    }
    return [make(shape, profile, n) for shape, ns in sizes.items() for n in ns for profile in PROFILES]


def main(argv: Sequence[str] | None = None) -> None:
    """Write the standard suite as JSON files (e.g. to feed the shared harness)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads", description=main.__doc__)
    parser.add_argument("out_dir", type=Path, help="directory to write <name>.json files into")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for workload in standard_suite():
        path = args.out_dir / f"{workload['name']}.json"
        path.write_text(json.dumps(workload, separators=(",", ":")))
        print(path)


if __name__ == "__main__":
    main()
