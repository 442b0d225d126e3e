"""The cost of OpenTelemetry tracing per task: the same workload untraced and traced.

    .venv/bin/python -m benchmarks.otel_bench            # layered 10,000 no-op tasks, 5 reps
    .venv/bin/python -m benchmarks.otel_bench --quick    # 1,000 tasks, 3 reps

Zero-duration tasks make the whole makespan scheduler overhead, so the difference per task
is what tracing adds to each task. Three modes, each rep a fresh process (a process can
install its tracer provider only once), alternating so drift of a shared machine affects
all alike:

- ``off``: OpenTelemetry never imported (a user without the ``otel`` extra);
- ``api``: the API imported, no SDK (a library user who installed no provider): must
  cost what ``off`` costs;
- ``sdk``: SDK providers with no exporter: what making the spans and metric points costs;
- ``on``: telemetry as ``stepweave`` configures it from ``OTEL_*`` variables
  (``configure_from_env``): records to an export process running the SDK's OTLP/HTTP
  exporters, posting to a local receiver (a thread of this parent process, decoding each
  request like a collector), metrics included.

Two times of ``on`` are given: the run (what tracing costs the traced work, the target)
and the run until ``force_flush`` returned, i.e. until the export process has exported
every span (export trails the run; the command waits for it at exit).

The table gives µs per task (median of the reps) and the ratios to off, measured in the
same invocation. Target: tracing adds less than 30% per task to the run. Spans received by
the receiver are checked against the spans expected (one per task and one per run), so a
run that silently dropped spans does not look cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from time import perf_counter

TARGET_OVERHEAD = 0.30
MODES = ("off", "api", "sdk", "on")


def _child(mode: str, nodes: int) -> dict[str, float]:
    """One timed run in this process (a child); returns µs per task and span numbers."""
    if mode == "api":
        import opentelemetry.trace  # noqa: F401  (imported, no provider installed)
    flush = None
    if mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        metrics.set_meter_provider(MeterProvider())
    if mode == "on":
        from orchestrator.telemetry.sdk import configure_from_env

        assert configure_from_env(), "the OTEL_* variables did not configure the SDK"
        from opentelemetry import trace

        flush = trace.get_tracer_provider().force_flush  # type: ignore[attr-defined]

    from orchestrator import Orchestrator

    from .engine import NODE_TOOL, build_graph
    from .recorder import REC, check
    from .workloads import make

    workload = make("layered", "noop", nodes)
    REC.reset()
    orchestrator = Orchestrator(tools=[NODE_TOOL])
    graph = build_graph(workload)
    gc.collect()
    gc.freeze()  # as benchmarks.journal_bench: no full collection of the set-up's objects

    async def timed() -> tuple[float, float]:
        run = orchestrator.start(graph)
        t0 = perf_counter()
        async with run:
            result = await run.wait()
        t1 = perf_counter()
        if not result.ok:
            raise RuntimeError(f"run {result.status}: {result.error}")
        if flush is not None:
            flush(60_000)
        return t1 - t0, perf_counter() - t0

    run_s, total_s = asyncio.run(timed())
    problems = check(workload["nodes"]).problems
    if problems:
        raise RuntimeError(f"run failed verification: {problems[:3]}")
    return {"run_us": run_s / nodes * 1e6, "total_us": total_s / nodes * 1e6}


def _spawn(mode: str, nodes: int, endpoint: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if mode == "on":
        env.update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_SERVICE_NAME="otel-bench",
            # Large enough that a 10,000-task run drops nothing (the default queue is 2,048).
            OTEL_BSP_MAX_QUEUE_SIZE=str(max(2048, 2 * nodes)),
        )
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.otel_bench", "--child", mode, "--nodes", str(nodes)],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.otel_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="1,000 tasks and 3 reps (smoke run)")
    parser.add_argument("--nodes", type=int, help="tasks in the layered workload (default 10,000)")
    parser.add_argument("--reps", type=int, help="measured runs of each mode (default 5, 3 with --quick)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    nodes = args.nodes or (1000 if args.quick else 10_000)
    if args.child:
        print(json.dumps(_child(args.child, nodes)))
        return 0
    reps = args.reps or (3 if args.quick else 5)

    from orchestrator.telemetry.testing import OTLPReceiver

    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    traced_run: list[float] = []
    with OTLPReceiver(keep_spans=False) as receiver:
        for rep in range(reps + 1):  # the first round warms up and is not counted
            line = []
            for mode in MODES:
                before = receiver.span_count
                out = _spawn(mode, nodes, receiver.endpoint)
                line.append(f"{mode} {out['total_us']:.1f}")
                if mode == "on":
                    received = receiver.span_count - before
                    # one span per task, one for the run; the receiver may still be decoding
                    # the last batch the child flushed before exiting: it posted and was answered.
                    if received != nodes + 1:
                        raise RuntimeError(f"expected {nodes + 1} spans, the receiver got {received}")
                if rep:
                    times[mode].append(out["total_us"])
                    if mode == "on":
                        traced_run.append(out["run_us"])
            print(
                f"rep {rep}{' (warm-up)' if rep == 0 else ''}: " + ", ".join(line) + " µs/task",
                file=sys.stderr,
            )
    med = {mode: statistics.median(values) for mode, values in times.items()}
    run_ratio = statistics.median(traced_run) / med["off"]
    api_ratio = med["api"] / med["off"]
    ok = run_ratio - 1 < TARGET_OVERHEAD
    print(f"layered {nodes:,} no-op tasks, {reps} reps, median µs per task")
    print(f"{'mode':<34}{'µs/task':>10}{'ratio':>9}")
    print(f"{'off (no OpenTelemetry)':<34}{med['off']:>10.1f}{1.0:>9.2f}")
    print(f"{'api only (no SDK installed)':<34}{med['api']:>10.1f}{api_ratio:>9.2f}")
    print(f"{'sdk, no exporter':<34}{med['sdk']:>10.1f}{med['sdk'] / med['off']:>9.2f}")
    print(
        f"{'on: run only':<34}{statistics.median(traced_run):>10.1f}{statistics.median(traced_run) / med['off']:>9.2f}"
    )
    print(f"{'on: run + export flushed':<34}{med['on']:>10.1f}{med['on'] / med['off']:>9.2f}")
    print(
        f"tracing adds {100 * (run_ratio - 1):.0f}% per task to the run (target < {100 * TARGET_OVERHEAD:.0f}%): "
        f"{'ok' if ok else 'MISSED'}; export done {med['on'] / med['off']:.2f}x the untraced run"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
