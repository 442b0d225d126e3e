"""What remote device execution costs, against Mosquitto on loopback, in one run.

```bash
.venv/bin/python -m benchmarks.devices_bench            # ~1 minute
.venv/bin/python -m benchmarks.devices_bench --quick    # fewer round trips and tasks
```

1. Round trip of one no-op call, sequentially (p50, p99): a raw aiomqtt
   request/response loop (QoS 1, TCP_NODELAY, the responder in its own process like an
   agent); ``DeviceExecutor.execute`` against one agent process; a one-task run through
   the ``Orchestrator`` to a device; the same run with the tool local.
2. Throughput: a fanout workload (WORKLOADS.md format, no-op nodes) with every middle node
   on a device, through 1, 4 and 16 agent processes; with the CPU each party used, to show
   where it saturates.

Benchmarks are not tests: nothing here runs under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import psutil  # type: ignore[import-untyped]

from orchestrator import LabelsTarget, Orchestrator, Task, TaskGraph
from orchestrator.devices import (
    AgentProcess,
    BrokerKind,
    DeviceExecutor,
    LocalBroker,
    find_mosquitto,
    spawn_agent,
)
from orchestrator.executors import ToolCall

from . import devices_tools
from .workloads import make

TOOLS = str(Path(__file__).resolve().with_name("devices_tools.py"))
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
TARGET_RATIO = 1.5


# -- round trips -------------------------------------------------------------------------


async def raw_responder(url: str) -> None:
    """The raw probe's device side: echo every request as a response, QoS 1 both ways."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    async with aiomqtt.Client(host, int(port), socket_options=NODELAY) as client:
        await client.subscribe("bench/raw/request", qos=1)
        print("ready", flush=True)
        async for message in client.messages:
            await client.publish("bench/raw/response", message.payload, qos=1)


async def start_raw_responder(url: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.devices_bench",
        "--raw-responder",
        url,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.readline(), 30)
    return process


async def time_calls(call: Callable[[], Awaitable[object]], rounds: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    gc.collect()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def raw_round_trips(url: str, rounds: int, warmup: int) -> list[float]:
    responder = await start_raw_responder(url)
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    try:
        async with aiomqtt.Client(host, int(port), socket_options=NODELAY) as client:
            await client.subscribe("bench/raw/response", qos=1)
            payload = b'{"v":1,"type":"request","tool":"noop","args":{}}'

            async def one() -> None:
                await client.publish("bench/raw/request", payload, qos=1)
                async for _ in client.messages:
                    return

            return await time_calls(one, rounds, warmup)
    finally:
        responder.terminate()
        await responder.wait()


async def device_round_trips(url: str, rounds: int, warmup: int) -> dict[str, list[float]]:
    agent = await spawn_agent("rtt-1", broker=url, tools=[TOOLS], namespace="bench-rtt")
    try:
        async with DeviceExecutor(broker=url, namespace="bench-rtt") as devices:
            await devices.wait_for_devices(ids=["rtt-1"])
            tool = devices_tools.noop
            counter = iter(range(1 << 30))

            async def execute() -> None:
                task = Task(id=f"n{next(counter)}", tool="noop", target="any-device")
                await devices.execute(ToolCall("bench", task, tool, {}, 1, None))

            remote = Orchestrator(tools=[tool], executors={"device": devices})
            local = Orchestrator(tools=[tool])
            remote_task = [Task(id="n", tool="noop", target="any-device")]
            local_task = [Task(id="n", tool="noop")]

            async def run_remote() -> None:
                (await remote.run(remote_task)).raise_for_status()

            async def run_local() -> None:
                (await local.run(local_task)).raise_for_status()

            return {
                "DeviceExecutor.execute, remote no-op": await time_calls(execute, rounds, warmup),
                "Orchestrator.run, 1 remote task": await time_calls(run_remote, rounds, warmup),
                "Orchestrator.run, 1 local task": await time_calls(run_local, rounds, warmup),
            }
    finally:
        await agent.stop()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- throughput ----------------------------------------------------------------------------


@dataclass
class Throughput:
    agents: int
    tasks: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


def labels_for(index: int, sizes: list[int]) -> dict[str, str]:
    """Agent ``index`` (1-based) belongs to every pool of a size it fits in."""
    return {f"pool{size}": "yes" for size in sizes if index <= size}


def workload_graph(nodes: int, pool: int) -> TaskGraph:
    """A WORKLOADS.md fanout (1 → n-2 → 1) of no-ops: the middle on devices, the ends local."""
    workload = make("fanout", "noop", nodes, meta=False)
    last = len(workload["nodes"]) - 1
    tasks = []
    for index, node in enumerate(workload["nodes"]):
        remote = 0 < index < last
        tasks.append(
            Task(
                id=node["id"],
                tool="noop",
                args={"duration_s": node["duration_s"]} if node["duration_s"] else {},
                deps=tuple(node["deps"]),
                target=LabelsTarget(labels={f"pool{pool}": "yes"}) if remote else "local",
            )
        )
    return TaskGraph(tasks, name=workload["name"])


async def throughput(
    url: str, broker_pid: int, agents: list[AgentProcess], pool: int, nodes: int, reps: int
) -> Throughput:
    processes = {"broker": psutil.Process(broker_pid), "orchestrator": psutil.Process(os.getpid())}
    agent_processes = [psutil.Process(a.pid) for a in agents[:pool]]
    async with DeviceExecutor(broker=url, namespace="bench-tp") as devices:
        await devices.wait_for_devices(ids=[a.device_id for a in agents[:pool]])
        orchestrator = Orchestrator(tools=[devices_tools.noop], executors={"device": devices})
        graph = workload_graph(nodes, pool)
        (await orchestrator.run(workload_graph(min(nodes, 200), pool))).raise_for_status()  # warm-up
        best: Throughput | None = None
        for _ in range(reps):
            gc.collect()
            before = {name: p.cpu_times() for name, p in processes.items()}
            agents_before = [p.cpu_times() for p in agent_processes]
            started = time.perf_counter()
            (await orchestrator.run(graph)).raise_for_status()
            seconds = time.perf_counter() - started
            cpu = {name: _busy(p.cpu_times(), before[name]) / seconds for name, p in processes.items()}
            cpu["agents"] = (
                sum(_busy(p.cpu_times(), b) for p, b in zip(agent_processes, agents_before, strict=True))
                / seconds
            )
            result = Throughput(pool, len(graph) - 2, seconds, cpu)
            if best is None or result.rate > best.rate:
                best = result
        assert best is not None
        return best


def _busy(after: Any, before: Any) -> float:
    """CPU seconds between two ``psutil.Process.cpu_times()`` readings."""
    return float((after.user - before.user) + (after.system - before.system))


# -- the report ----------------------------------------------------------------------------


def report(broker: str, trips: dict[str, list[float]], rates: list[Throughput]) -> str:
    raw_p50 = statistics.median(trips["raw aiomqtt request/response"])
    lines = [
        f"## Remote device execution ({broker} on loopback, {os.cpu_count()} CPUs)",
        "",
        "| round trip of one no-op call | p50 (ms) | p99 (ms) | p50 / raw |",
        "|---|---:|---:|---:|",
    ]
    for name, samples in trips.items():
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        lines.append(f"| {name} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | {p50 / raw_p50:.2f} |")
    execute = statistics.median(trips["DeviceExecutor.execute, remote no-op"])
    remote = statistics.median(trips["Orchestrator.run, 1 remote task"])
    local = statistics.median(trips["Orchestrator.run, 1 local task"])
    verdict = "met" if execute / raw_p50 <= TARGET_RATIO else "MISSED"
    lines += [
        "",
        f"Remote overhead per task (run remote − run local, p50): {(remote - local) * 1e3:.2f} ms. "
        f"Target: DeviceExecutor within {TARGET_RATIO}x of the raw loop — {verdict} "
        f"({execute / raw_p50:.2f}x).",
        "",
        "| agents | tasks | seconds | tasks/s | CPU: orchestrator | broker | agents (sum) | all |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cores = os.cpu_count() or 1
    for r in rates:
        total = sum(r.cpu.values())
        lines.append(
            f"| {r.agents} | {r.tasks} | {r.seconds:.2f} | {r.rate:,.0f} | {r.cpu['orchestrator']:.0%} "
            f"| {r.cpu['broker']:.0%} | {r.cpu['agents']:.0%} | {total:.0%} |"
        )
    best = max(rates, key=lambda r: r.rate)
    busiest = max(best.cpu, key=lambda name: best.cpu[name])
    lines += [
        "",
        "CPU is the share of one core each party used during the best repetition "
        f"(all: of {cores} cores = {cores:.0%}).",
        f"Peak: {best.rate:,.0f} tasks/s with {best.agents} agent(s); there the {busiest} used "
        f"{best.cpu[busiest]:.0%} of a core and all parties {sum(best.cpu.values()) / cores:.0%} of the machine.",
    ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> str:
    kind: BrokerKind = "mosquitto" if find_mosquitto() else "amqtt"
    if kind != "mosquitto":
        print("warning: mosquitto is not installed; measuring the amqtt broker instead", file=sys.stderr)
    sizes = sorted({int(n) for n in args.agents.split(",")})
    rounds, warmup = (200, 20) if args.quick else (args.rounds, 50)
    nodes = 1000 if args.quick else args.tasks
    async with LocalBroker(kind=kind) as broker:
        process = broker.process
        assert process is not None
        trips = {"raw aiomqtt request/response": await raw_round_trips(broker.url, rounds, warmup)}
        trips.update(await device_round_trips(broker.url, rounds, warmup))
        agents = await asyncio.gather(
            *(
                spawn_agent(
                    f"tp-{i}",
                    broker=broker.url,
                    tools=[TOOLS],
                    namespace="bench-tp",
                    labels=labels_for(i, sizes),
                    max_concurrency=args.max_concurrency,
                )
                for i in range(1, max(sizes) + 1)
            )
        )
        try:
            rates = [
                await throughput(broker.url, process.pid, list(agents), size, nodes, args.reps)
                for size in sizes
            ]
        finally:
            await asyncio.gather(*(a.stop() for a in agents))
    return report(kind, trips, rates)


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.devices_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="200 round trips, 1,000 tasks")
    parser.add_argument("--rounds", type=int, default=1000, help="round trips per measurement")
    parser.add_argument("--tasks", type=int, default=4000, help="nodes in the throughput workload")
    parser.add_argument("--agents", default="1,4,16", help="agent counts for throughput")
    parser.add_argument("--max-concurrency", type=int, default=16, help="tasks per agent at once")
    parser.add_argument("--reps", type=int, default=2, help="throughput repetitions (best is kept)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--raw-responder", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_responder:
        asyncio.run(raw_responder(args.raw_responder))
        return
    table = asyncio.run(main(args))
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    cli()
