"""What a device claims is not taken at face value (review findings 7 and 14).

Pins (``DeviceTrust``) choose the devices and the labels to believe; the capacity believed
is capped; a newcomer does not win ties; a device that takes requests and never answers
is avoided, and a task that may not run twice moves only when the device says it never
received it. Read-only tools are announced as such.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, Task, TaskStatus
from orchestrator.devices import DeviceAgent, DeviceExecutor, DeviceTrust, Topics, current_device
from orchestrator.devices.protocol import Capability, Heartbeat, Status, encode, schema_digest
from tools import Tool, tool

from .conftest import LogWatch, raw_client


@tool
async def whoami() -> str:
    """Name the device this runs on."""
    return current_device() or "local"


@tool(idempotent=False)
async def charge(amount: int) -> str:
    """A side effect that must not happen twice.

    Args:
        amount: How much.
    """
    return current_device() or "local"


@tool(read_only=True)
async def peek() -> str:
    """Read something."""
    return "seen"


def capabilities(*tools: Tool) -> list[Capability]:
    return [
        Capability(name=t.name, parameters=t.parameters_schema, digest=schema_digest(t.parameters_schema))
        for t in tools
    ]


async def test_pins_choose_the_devices_and_the_labels_believed(
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    # "rogue" claims site=lab like the real lab device, and a huge capacity.
    trust = DeviceTrust({"lab-1": {"site": "lab"}, "lab-2": None})
    async with (
        agent_factory("lab-1", [whoami], labels={"site": "elsewhere"}),
        agent_factory("lab-2", [whoami], labels={"site": "lab"}),
        agent_factory("rogue", [whoami], labels={"site": "lab"}, max_concurrency=64),
        executor_factory(trust=trust) as devices,
    ):
        await devices.wait_for_devices(ids=["lab-1", "lab-2"])
        await logs.wait_for("ignoring device rogue: it is not one of the pinned devices")
        orchestrator = Orchestrator(tools=[whoami], executors={"device": devices})
        graph = [Task(id=f"t{i}", tool="whoami", target={"labels": {"site": "lab"}}) for i in range(8)]
        result = await orchestrator.run(graph)
        assert result.ok and set(result.outputs.values()) <= {"lab-1", "lab-2"}
        assert "rogue" not in devices.devices
        # lab-1's own claim (site=elsewhere) is replaced by its pinned labels.
        assert devices.devices["lab-1"].labels == {"site": "lab"}
        assert len(logs.matching("ignoring device rogue")) == 1, "logged once, not per message"


def test_trust_from_a_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps({"devices": {"lab-1": {"site": "lab"}, "lab-2": None}, "labels": {}}))
    trust = DeviceTrust.from_options(env={"STEPWEAVE_DEVICE_TRUST": str(path)})
    assert trust.refusal("lab-1", {}) is None and trust.refusal("lab-3", {}) is not None
    narrowed = DeviceTrust.from_options(["lab-2"], {"site": "lab"}, file=path, env={})
    assert narrowed.refusal("lab-1", {"site": "lab"}) == "it is not one of the pinned devices"
    assert narrowed.refusal("lab-2", {"site": "prod"}) == "it lacks the pinned label(s) site=lab"
    from_env = DeviceTrust.from_options(env={"STEPWEAVE_DEVICES": "a, b", "STEPWEAVE_DEVICE_LABELS": "k=v"})
    assert from_env == DeviceTrust(["a", "b"], {"k": "v"})
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"trust\.json"):
        DeviceTrust.from_file(path)


async def test_claimed_capacity_is_capped_and_a_newcomer_does_not_win_ties(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    async with (
        agent_factory("old", [whoami], max_concurrency=4),
        executor_factory(max_device_concurrency=2) as devices,
    ):
        await devices.wait_for_devices(ids=["old"])
        orchestrator = Orchestrator(tools=[whoami], executors={"device": devices})
        first = await orchestrator.run([Task(id="t", tool="whoami", target="any-device")])
        assert first.outputs == {"t": "old"}
        async with agent_factory("greedy", [whoami], max_concurrency=64):
            await devices.wait_for_devices(ids=["greedy"])
            for _ in range(50):  # its ping echo opens its window
                if devices.devices["greedy"].proven:
                    break
                await asyncio.sleep(0.02)
            assert devices.devices["greedy"].max_concurrency == 2, "64 claimed, 2 believed"
            # Both idle: the tie goes to the device picked longest ago, not to the newcomer.
            second = await orchestrator.run([Task(id="t", tool="whoami", target="any-device")])
            assert second.outputs == {"t": "old"}
            third = await orchestrator.run([Task(id="t", tool="whoami", target="any-device")])
            assert third.outputs == {"t": "greedy"}, "then they take turns"


async def test_read_only_tools_are_announced_as_such(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    async with agent_factory("ro", [peek, charge]), executor_factory() as devices:
        [info] = await devices.wait_for_devices(ids=["ro"])
        assert info.read_only_tools == ("peek",)
        assert devices.announced_read_only("peek") and not devices.announced_read_only("charge")
        assert not devices.announced_read_only("missing")


class DeafAgent(DeviceAgent):
    """Answers pings but never acknowledges a request; ``remembers``: it did receive them."""

    remembers = False

    def _on_request(self, payload: bytes | bytearray) -> None:
        if self.remembers:
            self._seen[json.loads(payload)["key"]] = None


@pytest.mark.parametrize("remembers", [False, True], ids=["never-received", "received"])
async def test_an_unacknowledged_non_idempotent_task_moves_only_if_never_received(
    remembers: bool,
    broker_url: str,
    namespace: str,
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    deaf = DeafAgent("deaf", tools=[charge], broker=broker_url, namespace=namespace, heartbeat_interval=0.2)
    deaf.remembers = remembers
    # device_wait is how long the moved task may wait for the honest device to arrive. Its
    # arrival is an event, so a long wait costs nothing when it is quick. The fixture's 1 s
    # failed the run once in a loaded suite on amqtt (a link timed out and reconnected, and
    # the honest agent came online after the task had given up); starting the agent 2 s
    # late reproduces that failure every time.
    async with deaf, executor_factory(ack_timeout=0.3, device_wait=30) as devices:
        await devices.wait_for_devices(ids=["deaf"])
        await logs.wait_for("device deaf is alive")
        orchestrator = Orchestrator(tools=[charge], executors={"device": devices})
        running = asyncio.create_task(
            orchestrator.run([Task(id="pay", tool="charge", args={"amount": 5}, target="any-device")])
        )
        await logs.wait_for("no acknowledgement from deaf yet")
        # The honest device arrives while the task sits unacknowledged on the deaf one.
        async with DeviceAgent(
            "honest", tools=[charge], broker=broker_url, namespace=namespace, heartbeat_interval=0.2
        ):
            result = await asyncio.wait_for(running, 30)
        assert logs.matching(r"device deaf left task .* unacknowledged; avoiding it")
    if remembers:
        assert result["pay"].status is TaskStatus.FAILED
        error = result["pay"].error
        assert error is not None and "not idempotent, so it was not moved" in error.message
    else:
        assert result.outputs == {"pay": "honest"}
        assert logs.matching("deaf says it never received the request; moving it")


async def test_a_black_hole_device_does_not_fail_the_run(
    broker_url: str,
    namespace: str,
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    """``repro/blackhole.py``: valid credentials, any labels, capacity 64, accepts nothing."""
    topics = Topics(namespace)
    session = uuid.uuid4().hex[:8]
    status = Status(
        device_id="hole",
        session=session,
        state="online",
        capabilities=capabilities(charge, whoami),
        labels={"site": "lab"},
        max_concurrency=64,
        heartbeat_interval=0.2,
    )
    async with raw_client(broker_url) as hole:
        await hole.publish(topics.status("hole"), encode(status), qos=1, retain=True)

        async def beat() -> None:
            while True:
                await hole.publish(
                    topics.heartbeat("hole"), encode(Heartbeat(device_id="hole", session=session))
                )
                await asyncio.sleep(0.1)

        beating = asyncio.create_task(beat())
        try:
            async with (
                executor_factory(ack_timeout=0.3) as devices,
                agent_factory("lab-1", [charge, whoami], labels={"site": "lab"}, max_concurrency=2),
            ):
                await devices.wait_for_devices(ids=["hole", "lab-1"])
                orchestrator = Orchestrator(tools=[charge, whoami], executors={"device": devices})
                lab = {"labels": {"site": "lab"}}
                graph: list[Any] = [
                    *(Task(id=f"pay{i}", tool="charge", args={"amount": i}, target=lab) for i in range(6)),
                    *(Task(id=f"who{i}", tool="whoami", target=lab) for i in range(3)),
                ]
                result = await orchestrator.run(graph)
        finally:
            beating.cancel()
            await hole.publish(topics.status("hole"), b"", qos=1, retain=True)
    assert result.ok, [(r.id, r.error) for r in result.tasks.values() if r.error]
    assert set(result.outputs.values()) == {"lab-1"}
    # Non-idempotent work never went to the unproven device; idempotent work moved off it.
    assert not logs.matching(r"task .*pay\d.*: device hole")
