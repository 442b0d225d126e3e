"""Troubleshooting guides: sequential vs stepweave's DAG execution, in the same process.

    .venv/bin/python -m benchmarks.tsg_bench            # about 15 s
    .venv/bin/python -m benchmarks.tsg_bench --reps 5

StepFly reports 33-70% time savings on parallelisable guides. This measures what our
compiled DAGs save on guides that run here: each guide compiles once, then runs with
``max_concurrency=1`` (one step at a time, in a dependency order: how a person or a
sequential runner goes through it) and with no cap (every step as soon as its
dependencies end), alternating, on fresh event loops. Same engine, same commands, so the
ratio isolates the DAG. Conditions use their measurable tests; approvals are granted.

Guides: the two examples (real local commands; their checks take milliseconds, so the
saving is small), and ``slow-checks``, the service-health guide with each check preceded
by ``sleep 0.25`` — a stand-in for a metrics or cluster query with 250 ms of latency,
which is what real checks cost. A second table gives, for the six public runbooks (which
need a cluster), the saving their DAG's shape allows if every step took equally long:
1 - longest path / steps. Prints markdown tables; not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator import Orchestrator, Task
from planners.tsg import ConditionJudge, compile_guide, parse_guide, tsg_tools
from tools.builtin import builtin_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "tsg"


def slow_checks_guide() -> str:
    text = (EXAMPLES / "service-health.md").read_text()
    # Each read-only check gets 250 ms of simulated query latency in front of it.
    for command in ("df -Pk /", "head -n 3 /proc/meminfo", "cat /proc/loadavg"):
        text = text.replace(f"```shell\n{command}\n```", f"```shell\nsleep 0.25 && {command}\n```")
    return text


async def _approve(task: Task, args: Mapping[str, Any]) -> bool:
    return True


async def run_once(text: str, source: str, inputs: dict[str, str], limit: int | None) -> float:
    compiled = compile_guide(parse_guide(text, source))
    workflow = compiled.workflow()
    registry = builtin_registry()
    for item in tsg_tools(ConditionJudge(), registry):
        registry.register(item)
    orchestrator = Orchestrator(tools=registry, max_concurrency=limit, approver=_approve)
    values = workflow.resolve_inputs(inputs, from_strings=True)
    async with orchestrator.start(workflow.to_graph(), inputs=values) as run:
        started = time.perf_counter()
        result = await run.wait()
        took = time.perf_counter() - started
    if not result.ok:
        raise SystemExit(f"{source}: run failed: {result.error}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "app.log").write_text("x")
        guides = [
            ("service-health", (EXAMPLES / "service-health.md").read_text(), {"database": f"{tmp}/h.db"}),
            (
                "disk-usage",
                (EXAMPLES / "disk-usage.md").read_text(),
                {"database": f"{tmp}/d.db", "DATA_DIR": str(data)},
            ),
            ("slow-checks", slow_checks_guide(), {"database": f"{tmp}/s.db"}),
        ]
        print("| guide | steps | sequential (s) | DAG (s) | time saved |")
        print("|---|---|---|---|---|")
        for name, text, inputs in guides:
            steps = len(compile_guide(parse_guide(text, name)).steps)
            sequential: list[float] = []
            parallel: list[float] = []
            asyncio.run(run_once(text, name, inputs, None))  # warm-up
            for _ in range(options.reps):
                for limit, sink in ((1, sequential), (None, parallel)):
                    gc.collect()
                    sink.append(asyncio.run(run_once(text, name, inputs, limit)))
            seq, dag = statistics.median(sequential), statistics.median(parallel)
            print(f"| {name} | {steps} | {seq:.3f} | {dag:.3f} | {100 * (1 - dag / seq):.0f}% |")
    structural()


def structural() -> None:
    """The public runbooks cannot run here; their DAGs' shape still bounds the saving."""
    data = ROOT / "tests" / "planners" / "tsg" / "data"
    print(
        "\n| runbook (not run: needs a cluster) | steps | longest path | saving if every step took as long |"
    )
    print("|---|---|---|---|")
    for path in sorted(data.glob("*.md")):
        if path.name == "README.md":
            continue
        compiled = compile_guide(parse_guide(path.read_text(), path.name))
        steps, depth = len(compiled.steps), len(compiled.waves())
        print(f"| {path.name} | {steps} | {depth} | {100 * (1 - depth / steps):.0f}% |")


if __name__ == "__main__":
    main()
