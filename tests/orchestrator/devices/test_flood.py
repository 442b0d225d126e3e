"""Review finding 10: one device flooding its own heartbeat topic cannot make a healthy one "lost".

A real Mosquitto, a real agent process with a non-idempotent task in flight, and a separate
process publishing garbage on its own heartbeat topic as fast as it can. The orchestrator
drops the flooder's excess unread, counts any message as proof of life, pings a silent
device that holds tasks before giving up on it, and keeps waiting for the result of a task
that may not move: the run succeeds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceExecutor, LocalBroker, find_mosquitto, spawn_agent
from tools import load_tools

from .conftest import AGENT_TOOLS, BACKOFF, HEARTBEAT, LogWatch

pytestmark = pytest.mark.skipif(
    find_mosquitto() is None,
    reason="the mosquitto binary is not installed; the embedded amqtt broker is too slow to flood",
)

# It announces itself first (so the orchestrator listens to its heartbeats), then floods
# them with garbage as fast as paho can publish (tens of thousands a second).
FLOODER = """
import json, sys, paho.mqtt.client as mqtt
host, port, ns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flooder", protocol=mqtt.MQTTv311)
client.connect(host, port, 60)
client.loop_start()
status = {"v": 1, "type": "status", "device_id": "rogue", "session": "s", "state": "online"}
client.publish(f"{ns}/devices/rogue/status", json.dumps(status), qos=1, retain=True).wait_for_publish()
payload = b"\\xff\\xfe not json " * 10
print("flooding", flush=True)
while True:
    client.publish(f"{ns}/devices/rogue/heartbeat", payload, qos=0)
"""


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(kind="mosquitto") as broker:
        yield broker


async def test_a_heartbeat_flood_does_not_make_a_healthy_device_lost(
    broker: LocalBroker, namespace: str, logs: LogWatch
) -> None:
    tools = load_tools([AGENT_TOOLS])
    agent = await spawn_agent(
        "healthy", broker=broker.url, tools=[AGENT_TOOLS], namespace=namespace, heartbeat_interval=HEARTBEAT
    )
    flooder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FLOODER,
        broker.host,
        str(broker.port),
        namespace,
        stdout=subprocess.PIPE,
    )
    try:
        assert flooder.stdout is not None
        assert (await asyncio.wait_for(flooder.stdout.readline(), 30)).startswith(b"flooding")
        async with DeviceExecutor(
            broker=broker.url, namespace=namespace, backoff=BACKOFF, ack_timeout=0.5
        ) as devices:
            await devices.wait_for_devices(ids=["healthy"])
            await logs.wait_for("device rogue floods its heartbeat topic")
            orchestrator = Orchestrator(tools=tools, executors={"device": devices})
            task = Task(id="fx", tool="work", args={"seconds": 2.0}, target="any-device", idempotent=False)
            result = await asyncio.wait_for(orchestrator.run([task]), 40)
            assert result.ok, result["fx"].error
            assert result["fx"].output == {"pid": agent.pid}
        # Dropped unread, and rejections are logged a few times per window, not per message.
        assert len(logs.matching("rejected a heartbeat of device rogue")) <= 20
    finally:
        if flooder.returncode is None:
            flooder.kill()
        await flooder.wait()
        await agent.stop()
