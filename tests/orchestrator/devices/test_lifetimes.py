"""Device-side lifetimes: each object closes everything it started, on leaving ``async with``.

The agent, the dispatcher and their links keep their background work (jobs, sends, the
heartbeat, the connection loop) in one task group each; when their block ends, none of
it is left running, and a job cut short by the agent's exit has seen its cancellation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from orchestrator import DeviceTarget, Orchestrator, Task
from orchestrator.devices import DeviceAgent, DeviceExecutor, current_device
from tools import tool


@tool
async def whoami() -> str:
    """Name the device this runs on."""
    return current_device() or "local"


def _ours() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


def _connected(devices: DeviceExecutor) -> bool:
    return devices.connected


async def test_agent_and_executor_leave_no_task_behind(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    before = _ours()
    started = asyncio.Event()
    ended: list[str] = []

    @tool
    async def linger() -> str:
        """Run until cancelled."""
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cancelled")
        return "never"

    async with executor_factory() as devices, agent_factory("d1", [whoami, linger]) as agent:
        await devices.wait_for_devices(ids=["d1"], within=10)
        orchestrator = Orchestrator(tools=[whoami, linger], executors={"device": devices})
        result = await orchestrator.run([Task(id="a", tool="whoami", target=DeviceTarget(device="d1"))])
        assert result.outputs == {"a": "d1"}
        # A job still running when the agent leaves: cancelled and awaited by its exit.
        run = orchestrator.start([Task(id="b", tool="linger", target=DeviceTarget(device="d1"))])
        async with run:
            async with asyncio.timeout(10):
                await started.wait()
            await agent.aclose()
            assert ended == ["cancelled"]
            assert agent.running == 0
    assert _ours() <= before


async def test_orchestrator_block_holds_one_device_connection(
    broker_url: str, agent_factory: Callable[..., DeviceAgent]
) -> None:
    device = f"dev-{uuid.uuid4().hex[:6]}"
    before = _ours()
    async with agent_factory(device, [whoami], namespace="stepweave"):
        graph = [Task(id="remote", tool="whoami", target=DeviceTarget(device=device))]
        async with Orchestrator(tools=[whoami], broker=broker_url) as orchestrator:
            devices = orchestrator.devices
            assert isinstance(devices, DeviceExecutor) and _connected(devices)
            for _ in range(2):
                assert (await orchestrator.run(graph)).outputs == {"remote": device}
                assert _connected(devices)  # kept between runs inside the block
        assert not _connected(devices)
    assert _ours() <= before
