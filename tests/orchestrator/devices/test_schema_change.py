"""A device that announces a changed tool schema mid-run (issue 13, Tests).

The rule: a task already sent keeps the version it was sent under; a new call of a
device-only tool goes out under the version the fitting devices announce now, if its
arguments fit it and its result schema is unchanged (later steps were checked against
it), and is refused at once otherwise, naming the devices and the tool; a local copy
that no longer matches is never sent to the changed device, and the message says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceAgent, DeviceExecutor
from orchestrator.devices.catalog import RemoteTool
from orchestrator.devices.protocol import schema_digest
from orchestrator.graph import DeviceTarget
from tools import tool

from .conftest import LogWatch

#: Events of the gated version (created per test, inside its event loop).
_gate: dict[str, asyncio.Event] = {}


@tool(name="mark")
async def gated_mark(text: str) -> str:
    """Version 1, held until the test opens the gate."""
    _gate["entered"].set()
    await _gate["open"].wait()
    return text


@tool(name="mark")
def mark_v1(text: str) -> str:
    """Version 1."""
    return text


@tool(name="mark")
def mark_v2(text: str, times: int = 2) -> str:
    """Version 2: an optional argument more (old calls still fit)."""
    return text * times


@tool(name="mark")
def mark_v3(words: list[str]) -> str:
    """Version 3: old calls no longer fit."""
    return " ".join(words)


@tool(name="mark")
def mark_v4(text: str, times: int = 2) -> int:
    """Version 4: version 2's arguments, another result."""
    return len(text) * times


async def _sees(devices: DeviceExecutor, device_id: str, version: object) -> None:
    """Wait until ``device_id`` is alive and announces ``version`` of ``mark``."""
    assert isinstance(version, type(mark_v1))
    digest = schema_digest(version.parameters_schema)
    async with asyncio.timeout(5):
        while True:
            device = devices.devices.get(device_id)
            capability = devices.capabilities().get(device_id, {}).get("mark")
            if device is not None and device.alive and capability is not None and capability.digest == digest:
                return
            await devices.wait_for_change(1.0)


async def test_a_device_upgraded_mid_run_takes_new_calls_under_its_new_schema(
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    _gate.update(entered=asyncio.Event(), open=asyncio.Event())
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(agent_factory("a", [gated_mark]))
        devices = await stack.enter_async_context(executor_factory())
        async with agent_factory("b", [mark_v1]):
            await devices.settle(2.0)
            remote = RemoteTool.from_capability(devices.fleet()["mark"].capability)
            orchestrator = Orchestrator(tools=[remote], executors={"device": devices})
            tasks = [
                Task(id="first", tool="mark", args={"text": "one"}, target=DeviceTarget(device="a")),
                Task(
                    id="then",
                    tool="mark",
                    args={"text": "two"},
                    target=DeviceTarget(device="b"),
                    deps=("first",),
                ),
            ]
            run = await stack.enter_async_context(orchestrator.start(tasks))
            async with asyncio.timeout(5):
                await _gate["entered"].wait()
        # "first" is on a (version 1) while b comes back upgraded.
        async with agent_factory("b", [mark_v2]):
            await _sees(devices, "b", mark_v2)
            _gate["open"].set()
            result = await run.wait()
            assert result.ok, result
            assert result["first"].output == "one"  # sent under version 1, finished under it
            assert result["then"].output == "twotwo"  # a new call: version 2 ran it
            await logs.wait_for(r"task then: device b announce\(s\) another version of tool mark now")

        async with agent_factory("b", [mark_v3]):
            await _sees(devices, "b", mark_v3)
            refused = await orchestrator.run(
                [Task(id="again", tool="mark", args={"text": "three"}, target=DeviceTarget(device="b"))]
            )
        error = refused["again"].error
        assert error is not None and error.type == "ToolArgumentError", refused
        assert "task 'again': tool 'mark' changed on device b during the run" in error.message
        assert "'words' is a required property" in error.message

        async with agent_factory("b", [mark_v4]):
            await _sees(devices, "b", mark_v4)
            refused = await orchestrator.run(
                [Task(id="typed", tool="mark", args={"text": "four"}, target=DeviceTarget(device="b"))]
            )
        error = refused["typed"].error
        assert error is not None and error.type == "ToolArgumentError", refused
        assert "its result schema is not the one this run was checked against" in error.message


async def test_a_local_copy_that_no_longer_matches_is_not_sent_to_the_changed_device(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    async with executor_factory(device_wait=0.3) as devices:
        orchestrator = Orchestrator(tools=[mark_v1], executors={"device": devices})
        task = Task(id="t", tool="mark", args={"text": "x"}, target="any-device")
        async with agent_factory("b", [mark_v1]):
            await _sees(devices, "b", mark_v1)
            before = await orchestrator.run([task])
        assert before.ok and before["t"].output == "x", before
        async with agent_factory("b", [mark_v2]):
            await _sees(devices, "b", mark_v2)
            after = await orchestrator.run([task])
    error = after["t"].error
    assert error is not None and error.type == "DeviceUnavailable", after
    assert "b: announces another version of tool 'mark' than the task was checked against" in error.message
    assert "update the local copy or the device" in error.message
