"""``Orchestrator(broker=URL)``: device steps without building a DeviceExecutor by hand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceAgent
from tools import tool


@tool
async def whoami() -> str:
    """Name the device this runs on."""
    from orchestrator.devices import current_device

    return current_device() or "local"


async def test_runs_connect_to_the_broker_while_they_run(
    broker_url: str, agent_factory: Callable[..., DeviceAgent]
) -> None:
    device = f"dev-{uuid.uuid4().hex[:6]}"
    # The shorthand uses the default topic namespace, so this agent does too.
    async with agent_factory(device, [whoami], namespace="stepweave"):
        orchestrator = Orchestrator(tools=[whoami], broker=broker_url)
        graph = [Task(id="remote", tool="whoami", target={"device": device}), Task(id="here", tool="whoami")]
        first, second = await asyncio.gather(orchestrator.run(graph), orchestrator.run(graph))
        assert first.outputs == second.outputs == {"remote": device, "here": "local"}
        # Each run released the connection when it ended; a later run opens it again.
        devices: Any = orchestrator.devices
        assert devices is not None and not devices.connected
        third = await orchestrator.run(graph)
        assert third.outputs["remote"] == device and not devices.connected


def test_broker_and_a_device_executor_are_exclusive(broker_url: str) -> None:
    with pytest.raises(ValueError, match="not both"):
        Orchestrator(broker=broker_url, executors={"device": object()})  # type: ignore[dict-item]
