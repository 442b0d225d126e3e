"""One orchestrator, a large simulated fleet: what each device costs it (issue 13 item 5).

```bash
.venv/bin/python -m benchmarks.devices_scale                     # 1,000 devices, ~2 minutes
.venv/bin/python -m benchmarks.devices_scale --devices 100 --devices 300 --devices 1000
```

The benchmark starts one Mosquitto on a free loopback port (generated config, raised open
file limit) and ``--devices N`` agents: real ``DeviceAgent`` objects, each with its own
MQTT connection and the default 2 s heartbeat, many per process (``--per-process``). It
also runs a 2-agent fleet on its own namespace, the reference for the latency ratios.
For each fleet size it measures, in the orchestrator (this process):

- **connect storm**: every agent connects at once; seconds until the orchestrator, already
  connected, holds all N alive (status seen, heartbeats followed, ping answered);
- **heartbeats**: messages a second reaching the orchestrator over an idle window, and the
  share of one core it spent meanwhile (nothing but heartbeats happens then);
- **dispatch latency** of a no-op ``DeviceExecutor.execute`` on ``any-device``, sequential,
  p50/p99: with the fleet idle, and busy (every device holding one long task of ours, so
  every heartbeat reports running work and no device is idle);
  ratios against the 2-agent fleet in the same state;
- **CPU per remote task**: this process's CPU time over a 2,000-task no-op fan-out through
  ``Orchestrator.run`` (64 at a time), divided by the tasks;
- **registry memory per device**: a fresh ``DeviceExecutor`` learns the whole fleet from
  retained statuses under ``tracemalloc``; the traced growth, divided by N.

Benchmarks are not tests: nothing here runs under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceAgent, DeviceExecutor, LocalBroker, find_mosquitto
from orchestrator.executors import ToolCall

from . import devices_tools
from .devices_bench import percentile

TARGET_RATIO = 1.5
TARGET_BYTES = 10 * 1024
TARGET_HEARTBEAT_CPU = 0.05
HEARTBEAT = 2.0
#: Messages a second one device may send us here (see ``measure``).
RATE = 1e6
#: Requests in flight at once while loading the fleet (see ``hold_every_device``).
BATCH = 64


def raise_open_files() -> int:
    """Lift the soft open-file limit to the hard one (each agent holds a socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- agent host processes ---------------------------------------------------------------


async def host_agents(url: str, namespace: str, first: int, count: int) -> None:
    """Many agents in one process: build them, then on "go" connect them all at once."""
    raise_open_files()
    agents = [
        DeviceAgent(
            f"dev-{i:05d}",
            tools=[devices_tools.noop],
            broker=url,
            namespace=namespace,
            heartbeat_interval=HEARTBEAT,
            backoff=(0.2, 2.0),
            connect_timeout=60.0,
        )
        for i in range(first, first + count)
    ]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("loaded", flush=True)
    await reader.readline()  # "go"
    stop = asyncio.Event()

    async def serve(agent: DeviceAgent) -> None:
        async with agent:
            await stop.wait()

    serving = [asyncio.create_task(serve(agent)) for agent in agents]
    await reader.readline()  # EOF or "stop"
    stop.set()
    await asyncio.gather(*serving, return_exceptions=True)


@dataclass
class Hosts:
    processes: list[asyncio.subprocess.Process]

    @classmethod
    async def start(cls, url: str, namespace: str, devices: int, per_process: int) -> Hosts:
        processes = []
        for first in range(0, devices, per_process):
            count = min(per_process, devices - first)
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "benchmarks.devices_scale", "--host-agents", url, namespace),
                *(str(first), str(count)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(process)
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            assert line.strip() == b"loaded", line
        return cls(processes)

    def go(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")

    async def stop(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(b"stop\n")
            process.stdin.close()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


# -- measurements -------------------------------------------------------------------------


def cpu_seconds() -> float:
    return time.process_time()  # this process, every thread; finer than os.times()


@dataclass
class Fleet:
    devices: int
    storm: float = 0.0
    beats_per_second: float = 0.0
    beat_bytes_per_second: float = 0.0
    heartbeat_cpu: float = 0.0
    idle: list[float] | None = None
    busy: list[float] | None = None
    cpu_per_task: float = 0.0
    bytes_per_device: float = 0.0


def count_messages(executor: DeviceExecutor) -> Callable[[], tuple[int, int]]:
    """Count what reaches ``executor`` (wraps its message handler before it connects)."""
    counts = [0, 0]
    route = executor._route  # noqa: SLF001 - instrumentation: wraps the private message handler

    def counted(message: Any) -> None:
        counts[0] += 1
        counts[1] += len(message.payload)
        route(message)

    executor._route = counted  # type: ignore[method-assign]  # noqa: SLF001 - as above
    return lambda: (counts[0], counts[1])


async def latencies(executor: DeviceExecutor, rounds: int) -> list[float]:
    tool = devices_tools.noop
    samples = []
    for i in range(rounds + rounds // 10):
        task = Task(id=f"probe{i}", tool="noop", target="any-device")
        started = time.perf_counter()
        await executor.execute(ToolCall("probe", task, tool, {}, 1, None))
        if i >= rounds // 10:  # the first tenth warms up
            samples.append(time.perf_counter() - started)
    return samples


async def hold_every_device(executor: DeviceExecutor, devices: int) -> list[asyncio.Task[Any]]:
    """One long task of ours on every device (least loaded first spreads them one each)."""
    tool = devices_tools.noop
    calls = [
        ToolCall(
            "hold",
            Task(id=f"hold{i}", tool="noop", target="any-device"),
            tool,
            {"duration_s": 600.0},
            1,
            None,
        )
        for i in range(devices)
    ]
    held: list[asyncio.Task[Any]] = []
    # In batches: 1,000 requests at once would starve the simulated agents (hundreds share
    # a core here) past the 1 s acknowledgement timeout, which a real fleet does not see.
    for start in range(0, devices, BATCH):
        held += [asyncio.create_task(executor.execute(call)) for call in calls[start : start + BATCH]]
        async with asyncio.timeout(120):
            while sum(d.in_flight for d in executor.devices.values()) < len(held):
                await executor.wait_for_change(1.0)
    await asyncio.sleep(2 * HEARTBEAT)  # every device has reported its running task
    return held


async def cpu_per_task(executor: DeviceExecutor, tasks: int) -> float:
    # A steady stream, not a 2,000-wide burst (see BATCH).
    orchestrator = Orchestrator(
        tools=[devices_tools.noop], executors={"device": executor}, max_concurrency=BATCH
    )
    graph = [Task(id=f"t{i}", tool="noop", target="any-device") for i in range(tasks)]
    (await orchestrator.run(graph[:200])).raise_for_status()  # warm-up
    gc.collect()
    before = cpu_seconds()
    (await orchestrator.run(graph)).raise_for_status()
    return (cpu_seconds() - before) / tasks


async def traced_growth(url: str, namespace: str, devices: int) -> int:
    """Bytes ``tracemalloc`` sees grow while a fresh executor learns ``devices`` devices."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    async with DeviceExecutor(broker=url, namespace=namespace, connect_timeout=30.0) as fresh:
        await fresh.settle(within=120)
        if devices:
            await fresh.wait_for_devices(devices, within=120)
        gc.collect()
        after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


async def measure(url: str, devices: int, args: argparse.Namespace) -> Fleet:
    namespace = f"scale-{devices}-{os.getpid()}"
    fleet = Fleet(devices)
    hosts = await Hosts.start(url, namespace, devices, args.per_process)
    try:
        executor = DeviceExecutor(
            broker=url,
            namespace=namespace,
            device_wait=60.0,
            connect_timeout=30.0,
            # The default budget (200 messages/s per device) is a flood guard: back-to-back
            # no-ops to one device exceed it (two messages per task), and are dropped.
            max_device_rate=RATE,
        )
        received = count_messages(executor)
        async with executor:
            started = time.perf_counter()
            hosts.go()
            await executor.wait_for_devices(devices, within=300)
            async with asyncio.timeout(120):  # answered a ping: each takes more than one task
                while not all(d.proven for d in executor.devices.values()):
                    await executor.wait_for_change(1.0)
            fleet.storm = time.perf_counter() - started

            await asyncio.sleep(HEARTBEAT)
            gc.collect()
            count, size, cpu = *received(), cpu_seconds()
            await asyncio.sleep(args.window)
            fleet.beats_per_second = (received()[0] - count) / args.window
            fleet.beat_bytes_per_second = (received()[1] - size) / args.window
            fleet.heartbeat_cpu = (cpu_seconds() - cpu) / args.window

            fleet.idle = await latencies(executor, args.rounds)
            fleet.cpu_per_task = await cpu_per_task(executor, args.tasks)
            held = await hold_every_device(executor, devices)
            try:
                fleet.busy = await latencies(executor, args.rounds)
            finally:
                for task in held:
                    task.cancel()
                await asyncio.gather(*held, return_exceptions=True)
        # The registry's share: a fresh executor learns every device, under tracemalloc,
        # less what one that finds no device at all holds (its own fixed cost).
        empty = await traced_growth(url, f"{namespace}-empty", 0)
        fleet.bytes_per_device = (await traced_growth(url, namespace, devices) - empty) / devices
    finally:
        await hosts.stop()
    return fleet


# -- the report ----------------------------------------------------------------------------


def report(fleets: list[Fleet], reference: Fleet) -> str:
    assert reference.idle and reference.busy
    ref_idle, ref_busy = statistics.median(reference.idle), statistics.median(reference.busy)
    lines = [
        f"## One orchestrator, a simulated fleet (Mosquitto on loopback, {os.cpu_count()} CPUs, "
        f"heartbeat every {HEARTBEAT:g} s)",
        "",
        "| devices | connect storm (s) | heartbeats/s (KB/s) | heartbeat CPU | registry / device "
        "| idle p50 / p99 (ms) | idle p50 vs 2 | busy p50 / p99 (ms) | busy p50 vs 2 | CPU / remote task |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fleet in [reference, *fleets]:
        assert fleet.idle and fleet.busy
        idle, busy = statistics.median(fleet.idle), statistics.median(fleet.busy)
        lines.append(
            f"| {fleet.devices:,} | {fleet.storm:.2f} | {fleet.beats_per_second:,.0f} "
            f"({fleet.beat_bytes_per_second / 1024:,.1f}) | {fleet.heartbeat_cpu:.1%} "
            f"| {fleet.bytes_per_device / 1024:.1f} KB "
            f"| {idle * 1e3:.2f} / {percentile(fleet.idle, 0.99) * 1e3:.2f} | {idle / ref_idle:.2f}x "
            f"| {busy * 1e3:.2f} / {percentile(fleet.busy, 0.99) * 1e3:.2f} | {busy / ref_busy:.2f}x "
            f"| {fleet.cpu_per_task * 1e6:,.0f} µs |"
        )
    lines += ["", "Targets at the largest fleet:"]
    largest = max(fleets, key=lambda f: f.devices)
    assert largest.idle and largest.busy
    checks = [
        ("idle p50 within 1.5x of 2 agents", statistics.median(largest.idle) / ref_idle, TARGET_RATIO, "x"),
        ("busy p50 within 1.5x of 2 agents", statistics.median(largest.busy) / ref_busy, TARGET_RATIO, "x"),
        ("registry < 10 KB per device", largest.bytes_per_device / 1024, TARGET_BYTES / 1024, " KB"),
        ("heartbeats < 5% of one core", largest.heartbeat_cpu * 100, TARGET_HEARTBEAT_CPU * 100, "%"),
    ]
    for name, value, limit, unit in checks:
        verdict = "met" if value <= limit else "MISSED"
        lines.append(f"- {name}: {value:.2f}{unit} — {verdict}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> str:
    if find_mosquitto() is None:
        raise SystemExit("this benchmark needs Mosquitto (amqtt does not hold 1,000 connections)")
    limit = raise_open_files()
    biggest = max(args.devices)
    if limit < biggest + 256:
        print(f"warning: the open-file limit is {limit}; {biggest} connections need more", file=sys.stderr)
    # Mosquitto inherits the raised limit; its config is generated by LocalBroker.
    async with LocalBroker(kind="mosquitto", extra_config="max_connections -1") as broker:
        reference = await measure(broker.url, 2, args)
        fleets = [await measure(broker.url, n, args) for n in sorted(args.devices)]
    return report(fleets, reference)


def cli() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.devices_scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--devices", type=int, action="append", help="fleet size (repeatable; default 1,000)")
    parser.add_argument("--per-process", type=int, default=250, help="agents per host process")
    parser.add_argument("--rounds", type=int, default=300, help="sequential dispatches per latency row")
    parser.add_argument("--tasks", type=int, default=2000, help="tasks of the CPU-per-task run")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of idle heartbeat counting")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument(
        "--host-agents", nargs=4, metavar=("URL", "NS", "FIRST", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.host_agents:
        url, namespace, first, count = args.host_agents
        asyncio.run(host_agents(url, namespace, int(first), int(count)))
        return
    args.devices = args.devices or [1000]
    table = asyncio.run(main(args))
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    cli()
