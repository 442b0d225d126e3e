"""The documented Mosquitto setup: passwords plus an ACL that confines each device.

Mosquitto with MQTT 3.1.1 refuses silently (a denied publish still gets its PUBACK), so
each check pairs the forbidden message with a permitted one from the same client sent
after it: once the permitted one arrives, the forbidden one would have arrived first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from orchestrator import Orchestrator, Task
from orchestrator.devices import (
    BrokerConnectionError,
    DeviceAgent,
    DeviceExecutor,
    LocalBroker,
    Topics,
    find_mosquitto,
    mosquitto_acl,
    write_password_file,
)
from orchestrator.devices.protocol import Cancel, Heartbeat, Ping, Result, Status, TaskRequest, encode
from tools import tool

from .conftest import BACKOFF, HEARTBEAT, next_message, raw_client

pytestmark = pytest.mark.skipif(
    find_mosquitto() is None,
    reason="the mosquitto binary is not installed (.ci/run installs it); amqtt enforces no ACL",
)

PASSWORDS = {"orchestrator": "orch-pw", "dev-a": "a-pw", "dev-b": "b-pw", "monitor": "mon-pw"}
TOPICS = Topics()  # the documented default namespace


@tool
async def whoami() -> str:
    """Say which device this is."""
    return "dev-a"


@pytest.fixture
def secured_broker(tmp_path: Path) -> LocalBroker:
    write_password_file(tmp_path / "passwd", PASSWORDS)
    (tmp_path / "acl").write_text(mosquitto_acl(monitors=["monitor"]))
    return LocalBroker(kind="mosquitto", password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")


def url(broker: LocalBroker, user: str, password: str | None = None) -> str:
    return f"mqtt://{user}:{password or PASSWORDS[user]}@{broker.host}:{broker.port}"


@asynccontextmanager
async def login(broker: LocalBroker, user: str) -> AsyncIterator[aiomqtt.Client]:
    async with raw_client(broker.url, username=user, password=PASSWORDS[user]) as client:
        yield client


async def messages_until(client: aiomqtt.Client, sentinel_topic: str) -> list[str]:
    """Topics of the live messages received up to and including one on ``sentinel_topic``."""
    seen: list[str] = []
    while True:
        message = await next_message(client)
        if message.retain:
            continue
        seen.append(message.topic.value)
        if message.topic.value == sentinel_topic:
            return seen


async def test_the_acl_confines_each_device_to_its_own_topics(secured_broker: LocalBroker) -> None:
    async with (
        secured_broker,
        DeviceAgent(
            "dev-a",
            tools=[whoami],
            broker=url(secured_broker, "dev-a"),
            heartbeat_interval=HEARTBEAT,
            backoff=BACKOFF,
        ) as agent,
        DeviceExecutor(broker=url(secured_broker, "orchestrator"), backoff=BACKOFF) as devices,
    ):
        await devices.wait_for_devices(ids=["dev-a"])
        orchestrator = Orchestrator(tools=[whoami], executors={"device": devices})
        result = await orchestrator.run([Task(id="t", tool="whoami", target={"device": "dev-a"})])
        assert result.outputs == {"t": "dev-a"}, "the ACL lets a device do its job"

        oid = devices.orchestrator_id
        forbidden = {
            TOPICS.tasks("dev-a"): encode(
                TaskRequest(
                    orchestrator=oid,
                    run_id="x",
                    task_id="t",
                    key="x/t#1",
                    attempt=1,
                    nonce="n",
                    tool="whoami",
                    timeout=5,
                )
            ),
            TOPICS.control("dev-a"): encode(Cancel(key="x/t#1")),
            TOPICS.status("dev-a"): encode(
                Status(device_id="dev-a", session=agent.session, state="offline", reason="shutdown")
            ),
            TOPICS.heartbeat("dev-a"): encode(Heartbeat(device_id="dev-a", session=agent.session)),
            TOPICS.results(oid, "dev-a"): encode(
                Result(
                    device_id="dev-a",
                    run_id="x",
                    task_id="t",
                    key="x/t#1",
                    attempt=1,
                    nonce="n",
                    output="forged",
                )
            ),
        }
        async with login(secured_broker, "monitor") as monitor, login(secured_broker, "dev-b") as intruder:
            await monitor.subscribe(f"{TOPICS.namespace}/#", qos=1)
            for topic, payload in forbidden.items():
                await intruder.publish(topic, payload, qos=1)  # acknowledged, and dropped
            sentinel = TOPICS.heartbeat("dev-b")
            await intruder.publish(sentinel, encode(Heartbeat(device_id="dev-b", session="b")), qos=1)
            seen = await messages_until(monitor, sentinel)
        assert not set(seen) & forbidden.keys(), f"dev-b published into dev-a's topics: {seen}"
        assert devices.devices["dev-a"].alive, "the forged offline status did not reach the orchestrator"

        # Reading is confined too: dev-b subscribes to dev-a's tasks and sees none of them.
        async with (
            login(secured_broker, "dev-b") as eavesdropper,
            login(secured_broker, "orchestrator") as peer,
        ):
            await eavesdropper.subscribe([(TOPICS.tasks("dev-a"), 1), (TOPICS.control("dev-b"), 1)])
            await peer.publish(TOPICS.tasks("dev-a"), forbidden[TOPICS.tasks("dev-a")], qos=1)
            await peer.publish(TOPICS.control("dev-b"), encode(Ping()), qos=1)
            first = await next_message(eavesdropper)
        assert first.topic.value == TOPICS.control("dev-b"), "dev-b read a task meant for dev-a"


async def test_bad_credentials_are_refused(secured_broker: LocalBroker) -> None:
    async with secured_broker:
        with pytest.raises(BrokerConnectionError, match="refused"):
            async with DeviceAgent("dev-a", tools=[whoami], broker=url(secured_broker, "dev-a", "wrong")):
                pass
        with pytest.raises(BrokerConnectionError, match="refused"):
            async with DeviceExecutor(broker=secured_broker.url):  # anonymous
                pass


async def test_monitors_and_orchestrators_cannot_act_as_devices(secured_broker: LocalBroker) -> None:
    # Mosquitto applies `pattern` lines to every user, so without the deny lines the
    # "read-only" monitor could announce itself as device `monitor`, take tasks and answer.
    own = {
        user: {
            TOPICS.status(user): encode(Status(device_id=user, session="s", state="online")),
            TOPICS.heartbeat(user): encode(Heartbeat(device_id=user, session="s")),
            TOPICS.results("o", user): encode(
                Result(device_id=user, run_id="x", task_id="t", key="x/t#1", attempt=1, nonce="n")
            ),
        }
        for user in ("monitor", "orchestrator")
    }
    async with (
        secured_broker,
        login(secured_broker, "monitor") as watcher,
        login(secured_broker, "monitor") as monitor,
        login(secured_broker, "orchestrator") as orchestrator,
        login(secured_broker, "dev-b") as device,
    ):
        await watcher.subscribe(f"{TOPICS.namespace}/#", qos=1)
        for client, user in ((monitor, "monitor"), (orchestrator, "orchestrator")):
            for topic, payload in own[user].items():
                await client.publish(topic, payload, qos=1)  # acknowledged, and dropped
        # Published after the forgeries were acknowledged (so after Mosquitto routed them).
        sentinel = TOPICS.heartbeat("dev-b")
        await device.publish(sentinel, encode(Heartbeat(device_id="dev-b", session="b")), qos=1)
        seen = await messages_until(watcher, sentinel)
    forged = [topic for topic in seen if topic in own["monitor"] or topic in own["orchestrator"]]
    assert not forged, f"a monitor or orchestrator user published as a device: {forged}"
    assert seen == [sentinel], "the monitor still reads the whole namespace"


async def test_a_device_list_pins_the_fleet_on_the_broker(tmp_path: Path) -> None:
    write_password_file(tmp_path / "passwd", PASSWORDS)
    (tmp_path / "acl").write_text(mosquitto_acl(devices=["dev-a"], monitors=["monitor"]))
    broker = LocalBroker(kind="mosquitto", password_file=tmp_path / "passwd", acl_file=tmp_path / "acl")
    async with (
        broker,
        login(broker, "monitor") as watcher,
        login(broker, "dev-a") as listed,
        login(broker, "dev-b") as unlisted,
    ):
        await watcher.subscribe(f"{TOPICS.namespace}/#", qos=1)
        await unlisted.publish(
            TOPICS.status("dev-b"), encode(Status(device_id="dev-b", session="b", state="online")), qos=1
        )
        sentinel = TOPICS.heartbeat("dev-a")
        await listed.publish(sentinel, encode(Heartbeat(device_id="dev-a", session="a")), qos=1)
        seen = await messages_until(watcher, sentinel)
    assert seen == [sentinel], f"a device missing from the list announced itself: {seen}"
