"""Peak memory of one system running the no-op layered DAG, measured in a fresh process.

    python -m benchmarks.memory stepweave --nodes 10000 --method tracemalloc

A fresh process per (system, method) keeps one system's caches, arenas and peak RSS from
leaking into the other's figure. Imports and a small warm-up run happen first (lazy
initialisation is not per-task cost), and the workload dict is built before measuring
because both systems get it as input. Graph building is measured: it is memory stepweave
needs per task. Prints one JSON object on stdout.

- ``tracemalloc``: peak bytes of Python allocations during the run; exact and repeatable,
  but it slows the run down, so its time is meaningless.
- ``rss``: growth of the high-water mark of resident memory (``VmHWM``) over the run;
  what the OS sees, including allocator slack, and noisier. The high-water mark, not the
  current RSS, is the base because pages reclaimed under memory pressure would inflate a
  delta from the current RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import tracemalloc
from collections.abc import Sequence

from .recorder import REC, check
from .systems import SYSTEMS
from .workloads import make

__all__ = ["measure"]


def _max_rss_bytes() -> int:
    """This process's resident high-water mark.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries a parent's ``ru_maxrss`` over into
    a child it spawns, so under ``benchmarks.run`` the child's own growth would be hidden.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(system: str, nodes: int, method: str) -> dict[str, object]:
    """Warm up, then run ``system`` once on ``layered-n<nodes>-noop`` and measure its peak."""
    run = SYSTEMS[system]
    asyncio.run(run(make("tsg", "noop")))
    workload = make("layered", "noop", nodes, meta=False)
    REC.reset()
    gc.collect()
    if method == "tracemalloc":
        tracemalloc.start()
        asyncio.run(run(workload))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        before = _max_rss_bytes()
        asyncio.run(run(workload))
        peak = _max_rss_bytes() - before
    verified = check(workload["nodes"])
    return {
        "system": system,
        "method": method,
        "workload": workload["name"],
        "nodes": nodes,
        "peak_bytes": max(peak, 0),
        "problems": verified.problems,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.memory", description="Peak memory of one system in a fresh process."
    )
    parser.add_argument("system", choices=sorted(SYSTEMS))
    parser.add_argument("--nodes", type=int, default=10000, help="layered size: 10, 100, 1000 or 10000")
    parser.add_argument("--method", choices=("tracemalloc", "rss"), default="tracemalloc")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.system, args.nodes, args.method)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
