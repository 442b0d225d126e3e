"""Dispatch: capability, labels, load, per-device caps, results and errors, on real brokers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from orchestrator import Orchestrator, Task, TaskProgress, TaskStatus
from orchestrator.devices import DeviceAgent, DeviceExecutor, DeviceUnavailable, current_device
from tools import Tool, ToolContext, ToolError, tool


class Recorder:
    """What the tools of every in-process agent did, with the loop's clock."""

    def __init__(self) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = {}
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.started = asyncio.Event()

    def start(self, device: str) -> float:
        self.active[device] = self.active.get(device, 0) + 1
        self.peak[device] = max(self.peak.get(device, 0), self.active[device])
        self.started.set()
        return time.monotonic()

    def end(self, device: str, started: float) -> None:
        self.active[device] -= 1
        self.intervals.setdefault(device, []).append((started, time.monotonic()))


def device_tools(name: str, recorder: Recorder | None = None) -> list[Tool]:
    """The tools one agent offers; each knows which device it runs on."""

    @tool
    async def whoami() -> str:
        """Name the device this runs on."""
        return name

    @tool
    async def hold(seconds: float) -> str:
        """Occupy the device for ``seconds``."""
        assert recorder is not None
        started = recorder.start(name)
        try:
            await asyncio.sleep(seconds)
        finally:
            recorder.end(name, started)
        return name

    return [whoami, hold]


async def test_dispatch_by_capability_and_labels(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    @tool
    async def probe() -> str:
        """Only the lab device has this."""
        return "lab"

    @tool
    async def calibrate() -> str:
        """Only the bench device has this."""
        return "bench"

    lab = agent_factory("lab", [*device_tools("lab"), probe], labels={"site": "lab", "rack": "1"})
    field = agent_factory("field", device_tools("field"), labels={"site": "field"})
    bench = agent_factory("bench", [calibrate])
    async with lab, field, bench, executor_factory() as devices:
        await devices.wait_for_devices(ids=["lab", "field", "bench"])
        orchestrator = Orchestrator(
            tools=[*device_tools("orchestrator"), probe, calibrate], executors={"device": devices}
        )
        result = await orchestrator.run(
            [
                Task(id="by_labels", tool="whoami", target={"labels": {"site": "lab"}}),
                Task(id="by_two_labels", tool="whoami", target={"labels": {"site": "lab", "rack": "1"}}),
                Task(id="other_site", tool="whoami", target={"labels": {"site": "field"}}),
                Task(id="by_id", tool="whoami", target={"device": "field"}),
                Task(id="by_tool", tool="probe", target="any-device"),
                Task(id="only_bench", tool="calibrate", target="any-device"),
            ]
        )
    assert result.ok, result.error
    assert result.outputs == {
        "by_labels": "lab",
        "by_two_labels": "lab",
        "other_site": "field",
        "by_id": "field",
        "by_tool": "lab",
        "only_bench": "bench",
    }


async def test_no_capable_device_fails_with_the_reasons(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    async with (
        agent_factory("lab", device_tools("lab"), labels={"site": "lab"}),
        executor_factory(device_wait=0.3) as devices,
    ):
        await devices.wait_for_devices(ids=["lab"])
        orchestrator = Orchestrator(tools=device_tools("o"), executors={"device": devices})
        started = time.monotonic()
        result = await orchestrator.run([Task(id="mars", tool="whoami", target={"labels": {"site": "mars"}})])
        elapsed = time.monotonic() - started
    error = result["mars"].error
    assert result["mars"].status is TaskStatus.FAILED and error is not None
    assert error.type == "DeviceUnavailable" and error.retryable
    assert "no device can run task 'mars'" in error.message
    assert "lab: labels do not match (it has site=lab)" in error.message
    assert elapsed < 3, "waits device_wait for a device to appear, not longer"


async def test_a_tool_whose_schema_differs_is_not_used(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    @tool(name="whoami")
    async def old_whoami(verbose: bool = False) -> str:
        """An older version with another argument schema."""
        return "old"

    async with agent_factory("old", [old_whoami]), executor_factory(device_wait=0.2) as devices:
        await devices.wait_for_devices(ids=["old"])
        orchestrator = Orchestrator(tools=device_tools("o"), executors={"device": devices})
        result = await orchestrator.run([Task(id="t", tool="whoami", target="any-device")])
    error = result["t"].error
    assert error is not None and "old: announces another version of tool 'whoami'" in error.message


async def test_three_agents_run_tasks_concurrently(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    recorder = Recorder()
    names = ["a1", "a2", "a3"]
    agents = [agent_factory(n, device_tools(n, recorder), max_concurrency=1) for n in names]
    async with agents[0], agents[1], agents[2], executor_factory() as devices:
        await devices.wait_for_devices(ids=names)
        orchestrator = Orchestrator(tools=device_tools("o"), executors={"device": devices})
        result = await orchestrator.run(
            [Task(id=f"t{i}", tool="hold", args={"seconds": 0.3}, target="any-device") for i in range(3)]
        )
    assert result.ok, result.error
    assert sorted(result.outputs.values()) == names, "least-loaded: one task per device"
    intervals = [interval for n in names for interval in recorder.intervals[n]]
    latest_start = max(start for start, _ in intervals)
    earliest_end = min(end for _, end in intervals)
    assert latest_start < earliest_end, f"tasks did not overlap: {intervals}"


async def test_per_device_cap_is_enforced_by_the_dispatcher(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    recorder = Recorder()
    held: list[int] = []
    holder: list[DeviceAgent] = []

    @tool
    async def hold(seconds: float) -> str:
        """Record how many tasks the agent holds (queued or running) while this runs."""
        held.append(holder[0].running)
        started = recorder.start("capped")
        await asyncio.sleep(seconds)
        recorder.end("capped", started)
        return "capped"

    agent = agent_factory("capped", [hold], max_concurrency=2)
    holder.append(agent)
    async with agent, executor_factory() as devices:
        await devices.wait_for_devices(ids=["capped"])
        orchestrator = Orchestrator(tools=[hold], executors={"device": devices})
        result = await orchestrator.run(
            [Task(id=f"t{i}", tool="hold", args={"seconds": 0.1}, target="any-device") for i in range(6)]
        )
    assert result.ok, result.error
    assert recorder.peak["capped"] == 2
    assert max(held) <= 2, f"the device was sent more than its cap at once: {held}"


class Reading(BaseModel):
    sensor: str
    value: float


async def test_results_are_typed_and_progress_streams(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    @tool
    async def read_sensor(ctx: ToolContext, sensor: str) -> Reading:
        """Read one sensor."""
        ctx.progress(0.5, f"reading {sensor}")
        return Reading(sensor=sensor, value=21.5)

    @tool
    def read_slowly(ctx: ToolContext, sensor: str) -> dict[str, str | None]:
        """A blocking read, in a worker thread: progress and the device id still work."""
        ctx.progress(0.25, "warming up")
        ctx.progress(0.75, "reading")
        return {"sensor": sensor, "device": current_device()}

    async with agent_factory("s1", [read_sensor, read_slowly]), executor_factory() as devices:
        await devices.wait_for_devices(ids=["s1"])
        orchestrator = Orchestrator(tools=[read_sensor, read_slowly], executors={"device": devices})
        tasks = [
            Task(id="r", tool="read_sensor", args={"sensor": "t1"}, target="any-device"),
            Task(id="s", tool="read_slowly", args={"sensor": "t2"}, target="any-device"),
        ]
        async with orchestrator.start(tasks) as run:
            events = [event async for event in run.events()]
            result = await run.wait()
    assert result.ok, result.error
    output = result["r"].output
    assert isinstance(output, Reading) and output == Reading(sensor="t1", value=21.5)
    assert result["s"].output == {"sensor": "t2", "device": "s1"}
    progress = [(e.task_id, e.fraction, e.message) for e in events if isinstance(e, TaskProgress)]
    assert sorted(progress) == [("r", 0.5, "reading t1"), ("s", 0.25, "warming up"), ("s", 0.75, "reading")]


async def test_remote_errors_keep_their_type_and_retryability(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    calls: dict[str, int] = {}

    @tool
    async def fragile(mode: str) -> str:
        """Fail permanently, or once and then succeed."""
        calls[mode] = calls.get(mode, 0) + 1
        if mode == "permanent":
            raise ToolError("disk full", retryable=False)
        if calls[mode] == 1:
            raise ValueError("transient glitch")
        return "ok"

    async with agent_factory("f1", [fragile]), executor_factory() as devices:
        await devices.wait_for_devices(ids=["f1"])
        orchestrator = Orchestrator(
            tools=[fragile], executors={"device": devices}, failure_policy="continue", default_backoff=0.01
        )
        result = await orchestrator.run(
            [
                Task(
                    id="permanent", tool="fragile", args={"mode": "permanent"}, target="any-device", retries=3
                ),
                Task(
                    id="transient", tool="fragile", args={"mode": "transient"}, target="any-device", retries=3
                ),
            ]
        )
    permanent = result["permanent"]
    assert permanent.status is TaskStatus.FAILED and permanent.attempts == 1
    assert permanent.error is not None and permanent.error.type == "RemoteTaskError"
    assert "ToolError on device 'f1': disk full" in permanent.error.message
    assert not permanent.error.retryable
    assert result["transient"].ok and result["transient"].attempts == 2
    assert calls == {"permanent": 1, "transient": 2}


@pytest.mark.parametrize("idempotent", [None, False])
async def test_a_lost_device_hands_its_task_to_another_unless_it_is_not_idempotent(
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    idempotent: bool | None,
) -> None:
    started: dict[str, asyncio.Event] = {"first": asyncio.Event(), "second": asyncio.Event()}

    def make(name: str) -> Tool:
        @tool(name="job")
        async def job() -> str:
            """Wait long on the first device; finish at once on the second."""
            started[name].set()
            if name == "first":
                await asyncio.sleep(60)
            return name

        return job

    first = agent_factory("first", [make("first")])
    async with first, executor_factory() as devices:
        await devices.wait_for_devices(ids=["first"])
        orchestrator = Orchestrator(tools=[make("o")], executors={"device": devices})
        task = Task(id="t", tool="job", target="any-device", idempotent=idempotent)
        async with orchestrator.start([task]) as run:
            await asyncio.wait_for(started["first"].wait(), 5)
            async with agent_factory("second", [make("second")]):
                await devices.wait_for_devices(ids=["second"])
                await first.aclose()  # goes offline mid-task
                result = await asyncio.wait_for(run.wait(), 10)
    if idempotent is None:
        assert result.ok, result.error
        assert result.outputs == {"t": "second"}
    else:
        error = result["t"].error
        assert error is not None and error.type == "DeviceUnavailable" and not error.retryable
        assert "is not idempotent, so it was not moved" in error.message
        assert not started["second"].is_set()


async def test_a_lost_device_with_no_replacement_fails_the_task(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    begun = asyncio.Event()

    @tool
    async def job() -> str:
        """Never finishes on its own."""
        begun.set()
        await asyncio.sleep(60)
        return "never"

    only = agent_factory("only", [job])
    async with only, executor_factory(device_wait=0.2) as devices:
        await devices.wait_for_devices(ids=["only"])
        orchestrator = Orchestrator(tools=[job], executors={"device": devices})
        async with orchestrator.start([Task(id="t", tool="job", target="any-device")]) as run:
            await asyncio.wait_for(begun.wait(), 5)
            await only.aclose()
            result = await asyncio.wait_for(run.wait(), 10)
    error = result["t"].error
    assert error is not None and error.type == "DeviceUnavailable" and error.retryable
    assert "earlier attempts: only went offline (it shut down)" in error.message


async def test_wait_for_devices_times_out_with_a_clear_message(
    executor_factory: Callable[..., DeviceExecutor],
) -> None:
    async with executor_factory() as devices:
        with pytest.raises(DeviceUnavailable, match=r"waited 0\.2s for 1 device\(s\); alive: none"):
            await devices.wait_for_devices(1, within=0.2)
        assert devices.devices == {}
