"""The team journal measured: PostgreSQL's cost per task, and runs per second through the queue.

    .venv/bin/python -m benchmarks.queue_bench                 # a throwaway PostgreSQL server
    .venv/bin/python -m benchmarks.queue_bench --quick         # smaller, for a smoke run
    .venv/bin/python -m benchmarks.queue_bench --url postgresql://me@db:5432/bench

1. Journal overhead per task: the layered no-op workload (10,000 tasks) with the journal
   off, on SQLite and on PostgreSQL, alternating in one process (see ``journal_bench``).
2. Queue throughput: N ``stepweave worker`` processes (1, 2, 4; ``--concurrency 2``
   each) wait on an empty queue; then a burst of small runs (3 no-op steps each) is
   submitted and timed until the last one has succeeded.

Without ``--url`` the server is started from the system's binaries as the tests start
theirs (initdb into a temporary directory, fsync off): it measures our work, not a disk.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator import Task, TaskGraph
from orchestrator.journal import Journal
from orchestrator.journal.backend import RunStart
from orchestrator.journal.codec import encode_graph

from .journal_bench import _once

_TOOLS = "from tools import tool\n\n\n@tool\ndef noop(n: int = 0) -> int:\n    return n\n"


@contextlib.contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    # The tests' throwaway server: the same initdb + postgres, on a free port.
    from tests.orchestrator.journal.pg_server import PgServer, pg_bin

    bindir = pg_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (initdb/postgres); pass --url or install postgresql")
    server = PgServer(bindir)
    try:
        yield server.new_database()
    finally:
        server.close()


def _fresh(url: str, name: str) -> str:
    """A new database next to ``url``'s (each measurement starts from empty tables)."""
    import psycopg

    base, _, _ = url.rpartition("/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def overhead(url: str, nodes: int, reps: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"off": [], "sqlite": [], "postgres": []}
    with tempfile.TemporaryDirectory(prefix="stepweave-queue-bench-") as tmp:
        for rep in range(reps + 1):  # the first round warms up and is not counted
            lite = Path(tmp) / f"j{rep}.sqlite3"
            Journal(lite).check()
            pg = _fresh(url, f"overhead_{rep}_{int(time.time())}")
            Journal(pg).check()
            row = {"off": _once(nodes, None), "sqlite": _once(nodes, lite), "postgres": _once(nodes, pg)}  # type: ignore[arg-type]
            print(
                f"round {rep}: " + ", ".join(f"{k} {v:.1f} µs/task" for k, v in row.items()), file=sys.stderr
            )
            if rep:
                for key, value in row.items():
                    times[key].append(value)
    return {key: statistics.median(values) for key, values in times.items()}


def throughput(url: str, workers: int, runs: int) -> float:
    import psycopg

    db = _fresh(url, f"queue_{workers}_{int(time.time())}")
    journal = Journal(db)
    journal.check()
    graph = TaskGraph([Task(id=f"s{i}", tool="noop", deps=(f"s{i - 1}",) if i else ()) for i in range(3)])
    with tempfile.TemporaryDirectory(prefix="stepweave-queue-bench-") as tmp:
        (Path(tmp) / "bench_tools.py").write_text(_TOOLS)
        command = [
            str(Path(sys.executable).with_name("stepweave")), "worker", "--journal", db,
            "--tools", "bench_tools.py", "--concurrency", "2",
        ]  # fmt: skip
        procs = [
            subprocess.Popen(command, cwd=tmp, stderr=subprocess.PIPE, text=True) for _ in range(workers)
        ]
        try:
            for proc in procs:  # ready: each says so once its queue is open
                assert proc.stderr is not None
                line = proc.stderr.readline()
                if "serving" not in line:
                    raise RuntimeError(f"worker did not start: {line}{proc.stderr.read()}")
            start = time.perf_counter()
            _burst(journal, graph, runs)
            with psycopg.connect(db, autocommit=True) as conn:
                done = "SELECT count(*) FROM stepweave_runs WHERE status = 'succeeded'"
                while (conn.execute(done).fetchone() or (0,))[0] < runs:
                    time.sleep(0.02)  # the benchmark's own progress check, not the system's
            elapsed = time.perf_counter() - start
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.communicate(timeout=30)
    return runs / elapsed


def _burst(journal: Journal, graph: TaskGraph, runs: int) -> None:
    """Submit ``runs`` runs over one connection (``Journal.submit`` opens one per run)."""
    now = time.time()
    batch = "[" + encode_graph(graph, now) + "]"
    writer = journal.backend.writer()
    try:
        for _ in range(runs):
            start = RunStart(uuid.uuid4().hex[:12], graph.name, now, len(graph), '{"inputs":{}}', batch, None)
            writer.register(start)
    finally:
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queue_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--url", help="a PostgreSQL database to use (default: start a throwaway server)")
    parser.add_argument("--quick", action="store_true", help="1,000 tasks, 2 rounds, 60 runs per burst")
    args = parser.parse_args(argv)
    nodes, reps, runs = (1000, 2, 60) if args.quick else (10_000, 3, 200)
    with _database(args.url) as url:
        medians = overhead(url, nodes, reps)
        rates = {n: throughput(url, n, runs) for n in (1, 2, 4)}
    off = medians["off"]
    print(f"# journal overhead: layered-n{nodes}-noop, median of {reps}\n")
    print("| journal    | µs per task | added per task |")
    print("| ---------- | ----------: | -------------: |")
    for key in ("off", "sqlite", "postgres"):
        added = "-" if key == "off" else f"{medians[key] - off:.1f} µs"
        print(f"| {key:<10} | {medians[key]:11.1f} | {added:>14} |")
    print(f"\n# queue throughput: bursts of {runs} runs of 3 no-op steps, workers with --concurrency 2\n")
    print("| workers | runs / s |")
    print("| ------: | -------: |")
    for count, rate in rates.items():
        print(f"| {count:7d} | {rate:8.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
