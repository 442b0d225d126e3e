"""Where stepweave spends its per-task overhead: cProfile of the timed part of one run.

    .venv/bin/python -m benchmarks.profiling              # layered-n10000-noop
    .venv/bin/python -m benchmarks.profiling --nodes 1000 --top 30 --filter orchestrator/

Only ``run.wait()`` is profiled (graph building and validation are not part of the
makespan), after one unprofiled warm-up run. Shares are of the total profiled time;
cProfile inflates cheap calls, so read the shares as a ranking, not as exact costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator import Orchestrator

from .engine import NODE_TOOL, build_graph, run_stepweave
from .recorder import REC, check
from .workloads import Workload, make

__all__ = ["profile_run"]

# Paths in the table are shown relative to the repository, wherever it is checked out.
_ROOT = f"{Path(__file__).resolve().parents[1]}/"


async def _profiled(workload: Workload, profiler: cProfile.Profile) -> None:
    orchestrator = Orchestrator(tools=[NODE_TOOL])
    run = orchestrator.start(build_graph(workload))
    profiler.enable()
    async with run:
        result = await run.wait()
    profiler.disable()
    if not result.ok:
        raise RuntimeError(f"run failed: {result.error}")


def profile_run(workload: Workload) -> pstats.Stats:
    """Warm up, then profile one stepweave run of ``workload``; the run is verified."""
    asyncio.run(run_stepweave(make("tsg", "noop")))
    REC.reset()
    profiler = cProfile.Profile()
    asyncio.run(_profiled(workload, profiler))
    problems = check(workload["nodes"]).problems
    if problems:
        raise RuntimeError(f"invalid run: {problems}")
    return pstats.Stats(profiler)


def _rows(stats: pstats.Stats, key: str, path_filter: str, top: int) -> list[str]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    index = {"cumulative": 3, "tottime": 2}[key]
    ranked = sorted(table.items(), key=lambda item: item[1][index], reverse=True)
    lines = [f"{'share':>6} {'seconds':>8} {'calls':>8}  function ({key})"]
    for (path, line, name), entry in ranked:
        if path_filter and path_filter not in path:
            continue
        where = path.removeprefix(_ROOT) if path.startswith(_ROOT) else path.rsplit("/", 2)[-1]
        lines.append(f"{entry[index] / total:6.1%} {entry[index]:8.3f} {entry[1]:8d}  {where}:{line}({name})")
        if len(lines) > top:
            break
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--nodes", type=int, default=10000, help="layered no-op size: 10, 100, 1000, 10000")
    parser.add_argument("--top", type=int, default=25, help="rows per listing")
    parser.add_argument("--filter", default="", help="only functions whose file path contains this")
    args = parser.parse_args(argv)
    workload = make("layered", "noop", args.nodes)
    stats = profile_run(workload)
    print(f"# cProfile of stepweave on {workload['name']} (timed part only)\n")
    for key in ("cumulative", "tottime"):
        print("\n".join(_rows(stats, key, args.filter, args.top)), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
