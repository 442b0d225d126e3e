"""Hostile and repeated messages on real brokers: duplicates, forgeries, garbage, cancels."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest

from orchestrator import Orchestrator, RunStatus, Task, TaskStatus
from orchestrator.devices import DeviceAgent, DeviceExecutor, LocalBroker, Topics, find_mosquitto
from orchestrator.devices.broker import MAX_PACKET_SIZE
from orchestrator.devices.protocol import (
    Accepted,
    Heartbeat,
    ReplyMessage,
    Result,
    Status,
    TaskRequest,
    decode,
    encode,
)
from tools import tool

from .conftest import LogWatch, next_message, publish_each, raw_client


def request(**overrides: object) -> TaskRequest:
    fields: dict[str, object] = {
        "orchestrator": "orch-test",
        "run_id": "r1",
        "task_id": "t",
        "key": "r1/t#1",
        "attempt": 1,
        "nonce": "n1",
        "tool": "count",
        "timeout": 10,
    }
    fields.update(overrides)
    return TaskRequest.model_validate(fields)


async def next_reply(client: aiomqtt.Client) -> Any:
    """The next result-topic message (amqtt also leaks retained messages of other topics)."""
    while True:
        message = await next_message(client)
        if "/results/" in message.topic.value:
            return decode(message.payload, ReplyMessage)


class GatedCounter:
    """A ``count`` tool that counts its calls and waits until ``release`` is set, so a
    test can send duplicates while the first call is still running."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

        @tool
        async def count() -> int:
            """Count calls; wait for the test to release it."""
            self.calls += 1
            await self.release.wait()
            return self.calls

        self.tool = count


async def test_a_duplicated_request_runs_the_tool_once(
    broker_url: str, namespace: str, agent_factory: Callable[..., DeviceAgent]
) -> None:
    counter = GatedCounter()
    count, release = counter.tool, counter.release

    topics = Topics(namespace)
    async with agent_factory("dup", [count]), raw_client(broker_url) as orchestrator:
        await orchestrator.subscribe(topics.all_results("orch-test"), qos=1)
        payload = encode(request())
        # Twice while it runs: both acknowledged, one run.
        await orchestrator.publish(topics.tasks("dup"), payload, qos=1)
        await orchestrator.publish(topics.tasks("dup"), payload, qos=1)
        replies = []
        while len([r for r in replies if isinstance(r, Accepted)]) < 2:
            replies.append(await next_reply(orchestrator))
        release.set()
        result = await next_reply(orchestrator)
        assert isinstance(result, Result) and result.output == 1
        # Again after it finished, from a later attempt (a failover back to this device):
        # the cached result comes back, stamped for the attempt that asked.
        await orchestrator.publish(topics.tasks("dup"), encode(request(attempt=2, nonce="n2")), qos=1)
        again = await next_reply(orchestrator)
    assert isinstance(again, Result) and again.output == 1
    assert (again.attempt, again.nonce, again.device_id) == (2, "n2", "dup")
    assert counter.calls == 1


async def test_forged_results_are_dropped(
    broker_url: str,
    namespace: str,
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @tool
    async def measure() -> str:
        """The genuine measurement, once released."""
        started.set()
        await release.wait()
        return "genuine"

    topics = Topics(namespace)
    async with agent_factory("real", [measure]), executor_factory() as devices:
        await devices.wait_for_devices(ids=["real"])
        orchestrator = Orchestrator(tools=[measure], executors={"device": devices})
        async with orchestrator.start([Task(id="t", tool="measure", target="any-device")]) as run:
            await asyncio.wait_for(started.wait(), 5)
            oid, key = devices.orchestrator_id, f"{run.run_id}/t#1"

            def forged(device_id: str, nonce: str) -> bytes:
                return encode(
                    Result(
                        device_id=device_id,
                        run_id=run.run_id,
                        task_id="t",
                        key=key,
                        attempt=1,
                        nonce=nonce,
                        output="forged",
                    )
                )

            async with raw_client(broker_url) as forger:
                # The right device and attempt, on the right topic, but no knowledge of the nonce.
                await forger.publish(topics.results(oid, "real"), forged("real", "guess"), qos=1)
                await logs.wait_for(rf"dropped a forged result for task {key} from real: wrong nonce")
                # Claiming the assigned device from another device's topic.
                await forger.publish(topics.results(oid, "intruder"), forged("real", "guess"), qos=1)
                await logs.wait_for(
                    r"dropped a forged result .* claims device 'real' but came on the topic of 'intruder'"
                )
                # An honest-looking result from a device the task is not assigned to.
                await forger.publish(topics.results(oid, "intruder"), forged("intruder", "guess"), qos=1)
                await logs.wait_for(r"dropped a result .* from device intruder .* assigned to real")
            release.set()
            result = await asyncio.wait_for(run.wait(), 10)
    assert result.outputs == {"t": "genuine"}


async def test_oversized_and_malformed_messages_are_rejected_and_serving_goes_on(
    broker_url: str,
    namespace: str,
    agent_factory: Callable[..., DeviceAgent],
    executor_factory: Callable[..., DeviceExecutor],
    logs: LogWatch,
) -> None:
    @tool
    async def echo(text: str) -> str:
        """Echo ``text``."""
        return text

    topics = Topics(namespace)
    async with (
        agent_factory("sturdy", [echo], max_payload=4096),
        executor_factory(ack_timeout=0.2, max_payload=64 * 1024) as devices,
    ):
        await devices.wait_for_devices(ids=["sturdy"])
        oid = devices.orchestrator_id
        to_agent = topics.tasks("sturdy")
        await publish_each(
            broker_url,
            [
                (to_agent, b"\x00\xffnot json"),
                (to_agent, b'{"v": 99, "type": "request"}'),
                (to_agent, b'{"v": 1, "type": "request", "key": "k"}'),
                (to_agent, encode(request(tool="echo", args={"text": "x" * 5000}))),
                (topics.control("sturdy"), b"[1, 2]"),
            ],
        )
        for reason in (
            "rejected a task request: payload is not JSON",
            r"rejected a task request: unsupported protocol version 99 \(this side speaks 1\)",
            r"rejected a task request: malformed 'request' message: orchestrator: Field required",
            r"rejected a task request: payload of \d+ bytes exceeds the limit of 4096",
            "rejected a control message: payload is a JSON list, not an object",
        ):
            await logs.wait_for(reason)
        # The orchestrator side rejects garbage too, and goes on.
        await publish_each(
            broker_url,
            [
                (topics.results(oid, "sturdy"), b"{}"),
                (topics.results(oid, "sturdy"), b'{"v": 1, "type": "result"}'),
                (topics.heartbeat("sturdy"), b'{"v": 1, "type": "heartbeat"}'),
                # Over the orchestrator's limit, under the broker's (Mosquitto disconnects beyond 1 MiB).
                (topics.status("ghost"), b"x" * 200_000),
            ],
        )
        await logs.wait_for(r"rejected a message from device sturdy: not a stepweave message")
        await logs.wait_for(r"rejected a message from device sturdy: malformed 'result' message: device_id")
        await logs.wait_for(r"rejected a heartbeat of device sturdy: malformed 'heartbeat'")
        await logs.wait_for(r"rejected the status of device ghost: payload of 200000 bytes exceeds")
        orchestrator = Orchestrator(tools=[echo], executors={"device": devices})
        result = await orchestrator.run(
            [
                Task(id="small", tool="echo", args={"text": "still serving"}, target="any-device"),
                Task(id="big", tool="echo", args={"text": "y" * 5000}, target="any-device"),
            ]
        )
    assert result["small"].output == "still serving"
    # The dispatcher's limit (1 MiB) lets the big one out; the agent's (4 KiB) drops it, so it
    # is never acknowledged and the task moves on, then fails for want of another device.
    assert result["big"].status is TaskStatus.FAILED
    assert result["big"].error is not None and "did not acknowledge" in result["big"].error.message


async def test_requests_larger_than_the_limit_are_not_sent(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    @tool
    async def echo(text: str) -> str:
        """Echo ``text``."""
        return text

    async with agent_factory("e1", [echo]), executor_factory(max_payload=1024) as devices:
        await devices.wait_for_devices(ids=["e1"])
        orchestrator = Orchestrator(tools=[echo], executors={"device": devices})
        result = await orchestrator.run(
            [Task(id="big", tool="echo", args={"text": "z" * 2000}, target="any-device")]
        )
    error = result["big"].error
    assert error is not None and error.type == "MessageRejected" and not error.retryable
    assert "exceeds" in error.message or "the limit is 1024" in error.message


async def test_cancelling_a_run_cancels_the_remote_tool(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor], logs: LogWatch
) -> None:
    started, observed = asyncio.Event(), asyncio.Event()

    @tool
    async def endless() -> str:
        """Run until cancelled, and note that it was."""
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            observed.set()
            raise
        return "never"

    async with agent_factory("c1", [endless]), executor_factory() as devices:
        await devices.wait_for_devices(ids=["c1"])
        orchestrator = Orchestrator(tools=[endless], executors={"device": devices})
        async with orchestrator.start([Task(id="t", tool="endless", target="any-device")]) as run:
            await asyncio.wait_for(started.wait(), 5)
            run.cancel("the operator changed their mind")
            result = await asyncio.wait_for(run.wait(), 5)
            await asyncio.wait_for(observed.wait(), 5)
    assert result.status is RunStatus.CANCELLED
    await logs.wait_for(rf"device c1: cancelling {run.run_id}/t#1")


async def test_a_step_timeout_cancels_the_remote_tool(
    agent_factory: Callable[..., DeviceAgent], executor_factory: Callable[..., DeviceExecutor]
) -> None:
    observed = asyncio.Event()

    @tool
    async def slow() -> str:
        """Slower than the step's timeout."""
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            observed.set()
            raise
        return "never"

    async with agent_factory("c2", [slow]), executor_factory() as devices:
        await devices.wait_for_devices(ids=["c2"])
        # The run-wide default timeout is not in the request (the device sees a 1 h
        # deadline), so only our cancel message can stop the tool.
        orchestrator = Orchestrator(tools=[slow], executors={"device": devices}, default_timeout=0.3)
        result = await orchestrator.run([Task(id="t", tool="slow", target="any-device")])
        await asyncio.wait_for(observed.wait(), 5)
    error = result["t"].error
    assert error is not None and error.type == "TaskTimeout"


async def test_status_and_heartbeats_must_come_from_their_own_topic(
    broker_url: str, namespace: str, executor_factory: Callable[..., DeviceExecutor], logs: LogWatch
) -> None:
    topics = Topics(namespace)
    async with executor_factory() as devices, raw_client(broker_url) as squatter:
        status = Status(device_id="victim", session="s", state="online")
        await squatter.publish(topics.status("squatter"), encode(status), qos=1)
        await logs.wait_for(r"dropped a status claiming device 'victim' on the topic of 'squatter'")
        # Heartbeats are listened to only for devices that announced themselves (the
        # orchestrator then pings them): so the squatter does, under its own name.
        await squatter.subscribe(topics.control("squatter"), qos=1)
        own = Status(device_id="squatter", session="s", state="online")
        await squatter.publish(topics.status("squatter"), encode(own), qos=1)
        # The ping sent once its heartbeats are followed (amqtt may first hand out retained
        # messages of other topics: skip those).
        while (ping := await next_message(squatter)).retain or ping.topic.value != topics.control("squatter"):
            pass
        beat = Heartbeat(device_id="victim", session="s")
        await squatter.publish(topics.heartbeat("squatter"), encode(beat), qos=1)
        await logs.wait_for(r"dropped a heartbeat claiming device 'victim' on the topic of 'squatter'")
        assert set(devices.devices) == {"squatter"}


@pytest.mark.skipif(find_mosquitto() is None, reason="the packet limit is Mosquitto's (amqtt has none)")
async def test_the_generated_broker_config_refuses_oversized_messages(namespace: str) -> None:
    """Review finding 14: a 200 MB retained status reached every orchestrator that connected."""
    topics = Topics(namespace)
    async with LocalBroker(kind="mosquitto") as broker:
        with pytest.raises(aiomqtt.MqttError):
            async with raw_client(broker.url) as rogue:
                await rogue.publish(topics.status("rogue"), b"x" * (MAX_PACKET_SIZE + 1), qos=1, retain=True)
                await rogue.publish(topics.status("rogue"), b"{}", qos=1)  # the broker hung up on us
        async with raw_client(broker.url) as reader:
            await reader.subscribe(topics.all_status(), qos=1)
            await reader.publish(topics.status("sentinel"), b"{}", qos=1, retain=True)
            message = await next_message(reader)
        assert message.topic.value == topics.status("sentinel"), "nothing of the rogue's was retained"
