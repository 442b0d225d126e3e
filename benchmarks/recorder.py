"""The node body every system runs, and the check that a run obeyed the DAG.

The body stamps ``perf_counter()`` when it starts and ends. Timing inside the body (not
from ``RunResult`` timestamps) is what makes dispatch latency comparable across systems:
whatever an engine does between a dependency ending and the body starting (bookkeeping,
validation, events) counts against it, exactly as it would for a real tool.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from .workloads import Node

__all__ = ["REC", "Check", "NodeBody", "Recorder", "check", "node_body"]

#: An async node body: ``await body(node_id, duration_s)`` returns the node id.
NodeBody = Callable[[str, float], Awaitable[str]]


class Recorder:
    """Start/end stamps per node id and the order nodes finished in (duplicates kept)."""

    __slots__ = ("end", "log", "start")

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.log: list[str] = []

    def reset(self) -> None:
        self.start = {}
        self.end = {}
        self.log = []


#: The one recorder (a module global keeps the body as cheap as the shared harness's).
REC = Recorder()


async def node_body(node_id: str, duration_s: float) -> str:
    """Simulate one tool call: sleep ``duration_s`` (not at all when 0) and return the id."""
    rec = REC
    rec.start[node_id] = perf_counter()
    if duration_s:
        await asyncio.sleep(duration_s)
    rec.log.append(node_id)
    rec.end[node_id] = perf_counter()
    return node_id


@dataclass(slots=True)
class Check:
    """Whether a run was valid, why not, and its dispatch latencies (seconds)."""

    problems: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def median_latency_s(self) -> float | None:
        return statistics.median(self.latencies_s) if self.latencies_s else None


def check(nodes: Sequence[Node], rec: Recorder = REC) -> Check:
    """Every node ran exactly once and never started before all of its deps had ended.

    Also collects each node's dispatch latency: its start minus its last dependency's end.
    """
    result = Check()
    counts = Counter(rec.log)
    missing = [n["id"] for n in nodes if n["id"] not in counts]
    repeated = sorted(node_id for node_id, count in counts.items() if count > 1)
    unknown = set(counts) - {n["id"] for n in nodes}
    if missing:
        result.problems.append(f"{len(missing)} nodes never ran (e.g. {missing[0]!r})")
    if repeated:
        result.problems.append(f"{len(repeated)} nodes ran more than once (e.g. {repeated[0]!r})")
    if unknown:
        result.problems.append(f"{len(unknown)} unknown node ids ran (e.g. {min(unknown)!r})")
    early = 0
    for node in nodes:
        started = rec.start.get(node["id"])
        if not node["deps"] or started is None:
            continue
        ready = max(rec.end.get(dep, float("inf")) for dep in node["deps"])
        if started < ready:
            early += 1
        else:
            result.latencies_s.append(started - ready)
    if early:
        result.problems.append(f"{early} nodes started before all their deps had ended")
    return result
