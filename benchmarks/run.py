"""Benchmark stepweave against the plain-asyncio baseline and print a table.

    .venv/bin/python -m benchmarks.run            # full: about 1 minute
    .venv/bin/python -m benchmarks.run --quick    # smoke run on smaller workloads: < 30 s

Both systems run in the same process and the same session, so the ratios are meaningful
on any machine even where the absolute numbers are not. See ``benchmarks/README.md`` for
what each metric means and why its target is what it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .measure import Sample, Series, measure
from .report import Row, render
from .systems import SYSTEMS
from .workloads import make

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.md"

#: The targets (README.md explains each).
OVERHEAD_MAX_RATIO = 3.0
MAKESPAN_MAX_CP_RATIO = 1.02
DISPATCH_MAX_US = 200.0
MEMORY_MAX_EXTRA_KB = 4.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Workload sizes and repetitions of one mode (full or quick)."""

    mode: str
    reps: int
    warmup: int
    overhead_nodes: int
    makespan_nodes: int
    chain_nodes: int
    memory_nodes: int


FULL = Settings(
    "full", reps=3, warmup=1, overhead_nodes=10000, makespan_nodes=1000, chain_nodes=20, memory_nodes=10000
)
QUICK = Settings(
    "quick", reps=1, warmup=1, overhead_nodes=1000, makespan_nodes=100, chain_nodes=10, memory_nodes=1000
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _problems(series: dict[str, Series]) -> tuple[str, ...]:
    return tuple(p for s in series.values() for p in s.problems)


# -- the benchmarks -------------------------------------------------------------------


def overhead(s: Settings) -> list[Row]:
    """Zero-duration tasks: the whole makespan is scheduler overhead, shown per task."""
    workload = make("layered", "noop", s.overhead_nodes)
    n = len(workload["nodes"])
    _log(f"overhead: {workload['name']}")
    series = measure(workload, s.reps, s.warmup)
    us = {name: out.median(lambda x: x.makespan_s / n * 1e6) for name, out in series.items()}
    bl, sw = us["baseline"], us["stepweave"]
    return [
        Row(
            "µs per task (no-op)",
            workload["name"],
            bl,
            sw,
            target=f"ratio ≤ {OVERHEAD_MAX_RATIO:g}x",
            passed=bl is not None and sw is not None and sw <= OVERHEAD_MAX_RATIO * bl,
            problems=_problems(series),
        )
    ]


def makespan(s: Settings) -> list[Row]:
    """Real-looking durations: how close to the critical path each system finishes."""
    workload = make("layered", "uniform10-200ms", s.makespan_nodes)
    cp = float(workload["meta"]["critical_path_s"])
    _log(f"makespan: {workload['name']} (critical path {cp:.3f} s)")
    series = measure(workload, s.reps, s.warmup)
    values = {name: out.median(lambda x: x.makespan_s / cp) for name, out in series.items()}
    sw = values["stepweave"]
    return [
        Row(
            "makespan / critical path",
            workload["name"],
            values["baseline"],
            sw,
            target=f"≤ {MAKESPAN_MAX_CP_RATIO:g}",
            passed=sw is not None and sw <= MAKESPAN_MAX_CP_RATIO,
            digits=3,
            problems=_problems(series),
        )
    ]


def dispatch(s: Settings) -> list[Row]:
    """Latency from a dependency's end to its dependent's start, on agent-sized plans."""
    rows = []
    for shape, n in (("chain", s.chain_nodes), ("llmcompiler", None), ("tsg", None)):
        workload = make(shape, "fixed50ms", n)
        _log(f"dispatch: {workload['name']}")
        series = measure(workload, s.reps, s.warmup)
        us = {name: out.median(_latency_us) for name, out in series.items()}
        sw = us["stepweave"]
        rows.append(
            Row(
                "dispatch latency p50 (µs)",
                workload["name"],
                us["baseline"],
                sw,
                target=f"< {DISPATCH_MAX_US:g} µs",
                passed=sw is not None and sw < DISPATCH_MAX_US,
                problems=_problems(series),
            )
        )
    return rows


def _latency_us(sample: Sample) -> float | None:
    median = sample.check.median_latency_s
    return None if median is None else median * 1e6


def memory(s: Settings) -> list[Row]:
    """Peak memory per task, each system in its own fresh process (``benchmarks.memory``)."""
    rows = []
    for method, passes in (("tracemalloc", True), ("rss", False)):
        peaks: dict[str, float | None] = {}
        problems: list[str] = []
        name = ""
        for system in SYSTEMS:
            _log(f"memory: {system}, {method}, layered-n{s.memory_nodes}-noop (fresh process)")
            data, errors = _memory_child(system, s.memory_nodes, method)
            problems += errors
            name = str(data.get("workload", name))
            peak = data.get("peak_bytes")
            peaks[system] = None if peak is None else float(peak) / s.memory_nodes / 1024
        bl, sw = peaks["baseline"], peaks["stepweave"]
        extra = None if bl is None or sw is None else sw - bl
        rows.append(
            Row(
                f"peak memory, {method} (KB/task)",
                name,
                bl,
                sw,
                target=f"+{MEMORY_MAX_EXTRA_KB:g} KB/task max" if passes else "(info)",
                passed=(extra is not None and extra < MEMORY_MAX_EXTRA_KB) if passes else None,
                digits=2,
                stepweave_note="" if extra is None else f"{extra:+.2f}",
                problems=tuple(problems),
            )
        )
    return rows


def _memory_child(system: str, nodes: int, method: str) -> tuple[dict[str, Any], list[str]]:
    command = [sys.executable, "-m", "benchmarks.memory", system, "--nodes", str(nodes), "--method", method]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return {}, [f"{system}: memory child timed out"]
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {}, [f"{system}: memory child exited {proc.returncode}: {tail[0]}"]
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data, [f"{system}: {p}" for p in data.get("problems", [])]


BENCHMARKS: dict[str, Callable[[Settings], list[Row]]] = {
    "overhead": overhead,
    "makespan": makespan,
    "dispatch": dispatch,
    "memory": memory,
}


# -- command line ---------------------------------------------------------------------


def _header(s: Settings, elapsed_s: float, rows: Sequence[Row]) -> str:
    runs = "run" if s.reps == 1 else "runs"
    invalid = sum(1 for row in rows if row.problems)
    checked = f"{invalid} rows INVALID (see below)" if invalid else "all runs verified"
    return (
        f"# stepweave benchmarks ({s.mode})\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M')}, Python {platform.python_version()}, {os.cpu_count()} CPUs. "
        f"Median of {s.reps} {runs} after {s.warmup} warm-up, baseline and stepweave interleaved "
        f"in one process; memory in fresh processes; {checked}. Took {elapsed_s:.0f} s.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="smaller workloads, 1 run each (smoke test)")
    parser.add_argument("--reps", type=int, help="measured runs per system (default: 3, or 1 with --quick)")
    parser.add_argument(
        "--only", default="", help=f"comma list of benchmarks to run, from: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write the table to")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    settings = QUICK if args.quick else FULL
    if args.reps is not None:
        if args.reps < 1:
            parser.error("--reps must be at least 1")
        settings = replace(settings, reps=args.reps)

    began = time.perf_counter()
    rows = [row for name in chosen for row in BENCHMARKS[name](settings)]
    text = _header(settings, time.perf_counter() - began, rows) + "\n" + render(rows) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    _log(f"written to {args.out}")
    if any(row.problems for row in rows):
        return 2
    if args.check and any(row.passed is False for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
