"""The fleet as a whole: who gets a short run's work, and what the live devices offer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceAgent, DeviceExecutor, current_device
from orchestrator.devices.catalog import RemoteTool, fleet_problems
from orchestrator.graph import LabelsTarget
from tools import ToolArgumentError, ToolResultError, tool


@tool(read_only=True)
async def where(seconds: float) -> str:
    """Wait, then say which device ran it.

    Args:
        seconds: How long to wait.
    """
    await asyncio.sleep(seconds)
    return current_device() or "here"


async def test_a_short_run_is_spread_over_idle_devices_known_from_their_status(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    """Issue 17 item 9: the first device to answer its ping used to take every task."""
    # Entered in order: the executor connects after both agents are up, so it learns them
    # from their retained statuses.
    # A generous startup wait: it ends as soon as both devices answered (it waits on events),
    # so only a loaded machine ever uses more of it.
    async with (
        agent_factory("a", [where]),
        agent_factory("b", [where]),
        executor_factory(startup_wait=15.0) as devices,
    ):
        orchestrator = Orchestrator(tools=[where], executors={"device": devices})
        tasks = [Task(id=f"t{i}", tool="where", args={"seconds": 0.3}, target="any-device") for i in range(4)]
        result = await orchestrator.run(tasks)
    assert result.ok, result
    ran_on = sorted(result.tasks[f"t{i}"].output for i in range(4))
    assert ran_on == ["a", "a", "b", "b"]


async def test_the_fleet_s_announcements_are_the_contract(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    """Issue 13 item 1: a tool this process does not have, from the devices' own schemas."""
    async with agent_factory("edge", [where], labels={"site": "edge"}), executor_factory() as devices:
        known = await devices.settle(2.0)
        assert known["edge"].alive and known["edge"].protocol == "1.2"
        fleet = devices.fleet()
        assert [d.device_id for d in fleet["where"].devices] == ["edge"]
        remote = RemoteTool.from_capability(
            fleet["where"].capability, read_only=lambda: devices.announced_read_only("where")
        )
        assert remote.is_read_only({"seconds": 1}) is True
        assert remote.check_arguments({"seconds": "x", "extra": 1}) == [
            "unknown argument 'extra'; expected: seconds",
            "argument 'seconds': 'x' is not of type 'number'",
        ]
        try:
            remote.validate_arguments({})
            raise AssertionError("missing argument accepted")
        except ToolArgumentError as exc:
            assert "'seconds' is a required property" in str(exc)
        try:
            remote.validate_result(3)
            raise AssertionError("a result of the wrong type accepted")
        except ToolResultError as exc:
            assert "3 is not of type 'string'" in str(exc)
        # Run with nothing but the remote copy of the tool.
        orchestrator = Orchestrator(tools=[remote], executors={"device": devices})
        result = await orchestrator.run(
            [Task(id="w", tool="where", args={"seconds": 0}, target=LabelsTarget(labels={"site": "edge"}))]
        )
        assert result.ok and result.tasks["w"].output == "edge"
        wrong = [
            Task(id="here", tool="where", args={"seconds": 0}),
            Task(id="lab", tool="where", args={"seconds": 0}, target=LabelsTarget(labels={"site": "lab"})),
            Task(id="gone", tool="nothing", args={}, target="any-device"),
        ]
        problems = dict(fleet_problems(wrong, {"where": remote}, fleet))
        assert "exists only on devices" in problems["here"]
        assert "fits none of the devices offering 'where': edge (site=edge)" in problems["lab"]
        assert problems["gone"] == "no live device offers tool 'nothing'"
