"""The cost of the durable journal: the same workload with the journal off and on.

    .venv/bin/python -m benchmarks.journal_bench            # layered 10,000 no-op tasks, 5 reps
    .venv/bin/python -m benchmarks.journal_bench --quick    # 1,000 tasks, 3 reps

Zero-duration tasks make the whole makespan scheduler overhead, so the difference per task
is what the journal adds to each task: encoding its events, the group commits on the
writer thread, and waiting for durability before dependents start. Off and on alternate in
one process (each run on a fresh event loop, a fresh journal file), so drift of a shared
machine affects both alike. Target: the journal adds less than 50% per task.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from orchestrator import Orchestrator
from orchestrator.journal import Journal

from .engine import NODE_TOOL, build_graph, run_graph
from .recorder import REC, check
from .workloads import make

TARGET_OVERHEAD = 0.50


def _once(nodes: int, journal: Path | None, *, collector: bool = True) -> float:
    workload = make("layered", "noop", nodes)
    REC.reset()
    orchestrator = Orchestrator(tools=[NODE_TOOL], journal=journal)
    graph = build_graph(workload)
    # Collect and freeze after building, so both modes start timing with the same
    # collector state and no full collection scans the set-up's objects: otherwise whether
    # one (~60 ms at this heap size) lands inside the timed run depends on how many objects
    # the untimed set-up happened to allocate, which swamps what is being measured.
    gc.collect()
    gc.freeze()
    if not collector:
        gc.disable()
    try:
        makespan = asyncio.run(run_graph(orchestrator, graph))
    finally:
        gc.enable()
        gc.unfreeze()
    problems = check(workload["nodes"]).problems
    if problems:
        raise RuntimeError(f"run failed verification: {problems[:3]}")
    return makespan / len(workload["nodes"]) * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.journal_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="1,000 tasks and 3 reps (smoke run)")
    parser.add_argument("--nodes", type=int, help="tasks in the layered workload (default 10,000)")
    parser.add_argument("--reps", type=int, help="measured runs of each mode (default 5, 3 with --quick)")
    parser.add_argument(
        "--no-gc", action="store_true", help="collector off while timing: the scheduler and journal alone"
    )
    args = parser.parse_args(argv)
    nodes = args.nodes or (1000 if args.quick else 10_000)
    reps = args.reps or (3 if args.quick else 5)
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory(prefix="stepweave-journal-bench-") as tmp:
        for rep in range(reps + 1):  # the first pair warms up and is not counted
            journal = Path(tmp) / f"journal-{rep}.sqlite3"
            Journal(journal).check()  # creating the file is not part of a run
            off_us = _once(nodes, None, collector=not args.no_gc)
            on_us = _once(nodes, journal, collector=not args.no_gc)
            print(
                f"rep {rep}{' (warm-up)' if rep == 0 else ''}: off {off_us:.1f} µs/task, on {on_us:.1f}",
                file=sys.stderr,
            )
            if rep:
                off.append(off_us)
                on.append(on_us)
    off_med, on_med = statistics.median(off), statistics.median(on)
    overhead = on_med / off_med - 1
    verdict = "PASS" if overhead < TARGET_OVERHEAD else "FAIL"
    gc_note = ", collector off" if args.no_gc else ""
    print(f"# journal overhead: layered-n{nodes}-noop, median of {reps}{gc_note}\n")
    print("| journal | µs per task | added per task | overhead | target | pass/fail |")
    print("| ------- | ----------: | -------------: | -------: | ------ | --------- |")
    print(f"| off     | {off_med:11.1f} |              - |        - |        |           |")
    print(
        f"| on      | {on_med:11.1f} | {on_med - off_med:12.1f} µs | {overhead:7.0%} "
        f"| < {TARGET_OVERHEAD:.0%}  | {verdict:<9} |"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
