"""Faults on real processes and brokers: kill -9, SIGSTOP, a broker restart."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from orchestrator import Orchestrator, Run, Task, TaskEnded, TaskProgress
from orchestrator.devices import AgentProcess, DeviceAgent, DeviceExecutor, LocalBroker, spawn_agent
from tools import tool

from . import agent_tools
from .conftest import AGENT_TOOLS, BACKOFF, HEARTBEAT, LogWatch


@asynccontextmanager
async def agent_processes(
    url: str, namespace: str, *names: str, keepalive: int = 10
) -> AsyncIterator[list[AgentProcess]]:
    started = await asyncio.gather(
        *(
            spawn_agent(
                name,
                broker=url,
                tools=[AGENT_TOOLS],
                namespace=namespace,
                heartbeat_interval=HEARTBEAT,
                keepalive=keepalive,
                max_concurrency=1,
            )
            for name in names
        )
    )
    try:
        yield list(started)
    finally:
        await asyncio.gather(*(agent.stop() for agent in started))


async def first_progress(run: Run) -> TaskProgress:
    async for event in run.events():
        if isinstance(event, TaskProgress):
            return event
    raise AssertionError("the run ended without progress")


def pid_of(progress: TaskProgress) -> int:
    match = re.search(r"pid=(\d+)", progress.message)
    assert match, progress.message
    return int(match.group(1))


async def test_kill_9_mid_task_completes_on_another_agent_exactly_once(
    broker_url: str, namespace: str, executor_factory: Callable[..., DeviceExecutor], tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    async with agent_processes(broker_url, namespace, "k1", "k2") as agents, executor_factory() as devices:
        await devices.wait_for_devices(ids=["k1", "k2"])
        orchestrator = Orchestrator(tools=[agent_tools.work], executors={"device": devices})
        task = Task(id="t", tool="work", args={"seconds": 0.5, "journal": str(journal)}, target="any-device")
        async with orchestrator.start([task]) as run:
            progress = await asyncio.wait_for(first_progress(run), 10)
            victim = next(a for a in agents if a.pid == pid_of(progress))
            survivor = next(a for a in agents if a is not victim)
            victim.kill()
            result = await asyncio.wait_for(run.wait(), 20)
            events = [e async for e in run.events()]
    assert result.ok, result.error
    assert result["t"].output == {"pid": survivor.pid}
    assert [e.task_id for e in events if isinstance(e, TaskEnded)] == ["t"]
    lines = journal.read_text().splitlines()
    assert lines == [f"start t {victim.pid}", f"start t {survivor.pid}", f"end t {survivor.pid}"]


async def test_a_silent_agent_is_detected_by_its_heartbeat_deadline(
    broker_url: str,
    namespace: str,
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
    tmp_path: Path,
) -> None:
    # A long keepalive: the broker would take 45 s to notice, so only our heartbeat
    # deadline (3 x 0.2 s) can explain a quick failover.
    async with (
        agent_processes(broker_url, namespace, "s1", "s2", keepalive=30) as agents,
        executor_factory() as devices,
    ):
        if True:
            await devices.wait_for_devices(ids=["s1", "s2"])
            orchestrator = Orchestrator(tools=[agent_tools.work], executors={"device": devices})
            task = Task(id="t", tool="work", args={"seconds": 0.5}, target="any-device")
            async with orchestrator.start([task]) as run:
                progress = await asyncio.wait_for(first_progress(run), 10)
                frozen = next(a for a in agents if a.pid == pid_of(progress))
                survivor = next(a for a in agents if a is not frozen)
                frozen.pause()
                try:
                    await logs.wait_for(rf"device {frozen.device_id} missed its heartbeat deadline")
                    result = await asyncio.wait_for(run.wait(), 20)
                finally:
                    frozen.resume()
    assert result.ok, result.error
    assert result["t"].output == {"pid": survivor.pid}


async def test_broker_restart_mid_run_reconnects_and_completes(
    own_broker: LocalBroker, logs: LogWatch
) -> None:
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    calls = 0

    @tool
    async def gated() -> str:
        """Run until released; count calls."""
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        finished.set()
        return "done"

    agent = DeviceAgent(
        "r1", tools=[gated], broker=own_broker.url, heartbeat_interval=HEARTBEAT, backoff=BACKOFF
    )
    executor = DeviceExecutor(broker=own_broker.url, ack_timeout=0.5, backoff=BACKOFF)
    async with agent, executor:
        await executor.wait_for_devices(ids=["r1"])
        orchestrator = Orchestrator(tools=[gated], executors={"device": executor})
        async with orchestrator.start([Task(id="t", tool="gated", target="any-device")]) as run:
            await asyncio.wait_for(started.wait(), 5)
            await asyncio.to_thread(own_broker.stop)
            await logs.wait_for("lost the connection")
            release.set()  # the result is computed while the broker is down: it is queued
            await asyncio.wait_for(finished.wait(), 5)
            await asyncio.to_thread(own_broker.start)
            result = await asyncio.wait_for(run.wait(), 20)
    assert result.ok, result.error
    assert result.outputs == {"t": "done"}
    assert calls == 1
    assert len(logs.matching("reconnected to")) >= 2, "both the agent and the executor reconnected"
