"""Timing both systems on one workload: warm-up, interleaved repetitions, verification.

Each run gets a fresh event loop (``asyncio.run``) and a fresh executor, after a
``gc.collect()``, so no run inherits another's garbage or state. Repetitions alternate
baseline and stepweave, so slow drift of a shared machine affects both alike.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .recorder import REC, Check, check
from .systems import SYSTEMS
from .workloads import Workload

__all__ = ["Sample", "Series", "measure"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One verified (or not) run: its makespan and what the recorder saw."""

    makespan_s: float
    check: Check


@dataclass(slots=True)
class Series:
    """The measured runs of one system on one workload, and problems of any run."""

    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def median(self, value: Callable[[Sample], float | None]) -> float | None:
        values = [v for v in map(value, self.samples) if v is not None]
        return statistics.median(values) if values else None


def run_once(system: str, workload: Workload) -> Sample:
    REC.reset()
    gc.collect()
    makespan = asyncio.run(SYSTEMS[system](workload))
    return Sample(makespan, check(workload["nodes"]))


def measure(workload: Workload, reps: int, warmup: int = 1) -> dict[str, Series]:
    """Run every system ``warmup + reps`` times on ``workload``; keep the last ``reps``.

    Warm-up runs are verified too (a broken run is broken even if untimed). An exception
    becomes a problem of that system's series rather than aborting the whole suite.
    """
    series = {name: Series() for name in SYSTEMS}
    crashed: set[str] = set()
    for i in range(warmup + reps):
        for name, out in series.items():
            if name in crashed:
                continue
            try:
                sample = run_once(name, workload)
            except Exception as exc:
                out.problems.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
                crashed.add(name)
                continue
            out.problems.extend(f"{name}: {p}" for p in sample.check.problems)
            if i >= warmup:
                out.samples.append(sample)
    for out in series.values():
        out.problems = list(dict.fromkeys(out.problems))  # the same problem in every rep
    return series
