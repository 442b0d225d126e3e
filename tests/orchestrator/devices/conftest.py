"""Real brokers for the device tests: Mosquitto (when installed) and the embedded amqtt.

Every broker-backed test runs once per broker kind. One broker per kind serves the whole
session; each test gets its own topic namespace, so tests cannot see each other's
devices. Tests that restart a broker or need its ACL start their own.

Timings are shortened (heartbeats every 0.2 s, reconnect backoff from 50 ms) so faults are
detected in well under a second; nothing sleeps to wait for a race: tests wait on events,
log records and messages, each with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from orchestrator.devices import BrokerKind, DeviceAgent, DeviceExecutor, LocalBroker, find_mosquitto

HERE = Path(__file__).resolve().parent
#: The tools module agent subprocesses load (by path, as `stepweave agent --tools` would).
AGENT_TOOLS = str(HERE / "agent_tools.py")

HEARTBEAT = 0.2
BACKOFF = (0.05, 0.5)

_NO_MOSQUITTO = "the mosquitto binary is not installed (.ci/run installs Debian's mosquitto package)"
BROKER_KINDS = [
    pytest.param("mosquitto", marks=pytest.mark.skipif(find_mosquitto() is None, reason=_NO_MOSQUITTO)),
    "amqtt",
]


@pytest.fixture(scope="session", params=BROKER_KINDS)
def broker_kind(request: pytest.FixtureRequest) -> BrokerKind:
    kind: BrokerKind = request.param
    return kind


@pytest.fixture(scope="session")
def shared_broker(broker_kind: BrokerKind) -> Iterator[LocalBroker]:
    broker = LocalBroker(kind=broker_kind)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report carries the shared broker's last log lines: the broker is a
    child process whose output is otherwise lost with the run (a dropped connection, say)."""
    report = yield
    broker = getattr(item, "funcargs", {}).get("shared_broker")
    if report.failed and isinstance(broker, LocalBroker):
        report.sections.append((f"{broker.kind} broker output (last lines)", broker.output or "(none)"))
    return report


@pytest.fixture
def broker_url(shared_broker: LocalBroker) -> str:
    if not shared_broker.running:  # a crashed broker must fail loudly, not time out every test
        pytest.fail(f"the shared {shared_broker.kind} broker died:\n{shared_broker.output}")
    return shared_broker.url


@pytest.fixture
def own_broker(broker_kind: BrokerKind) -> Iterator[LocalBroker]:
    """A broker for this test alone (it may restart it)."""
    broker = LocalBroker(kind=broker_kind)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def agent_factory(broker_url: str, namespace: str) -> Callable[..., DeviceAgent]:
    """Build in-process agents with test timings on the shared broker and namespace."""

    def make(device_id: str, tools: list[Any], **options: Any) -> DeviceAgent:
        options.setdefault("broker", broker_url)
        options.setdefault("namespace", namespace)
        options.setdefault("heartbeat_interval", HEARTBEAT)
        options.setdefault("backoff", BACKOFF)
        return DeviceAgent(device_id, tools=tools, **options)

    return make


@pytest.fixture
def executor_factory(broker_url: str, namespace: str) -> Callable[..., DeviceExecutor]:
    def make(**options: Any) -> DeviceExecutor:
        options.setdefault("broker", broker_url)
        options.setdefault("namespace", namespace)
        options.setdefault("ack_timeout", 0.5)
        options.setdefault("device_wait", 1.0)
        options.setdefault("backoff", BACKOFF)
        return DeviceExecutor(**options)

    return make


class LogWatch(logging.Handler):
    """Collects ``stepweave.devices`` log records; ``wait_for`` awaits a matching one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self._waiters: list[tuple[re.Pattern[str], asyncio.Future[str], asyncio.AbstractEventLoop]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        for pattern, future, loop in list(self._waiters):
            if pattern.search(message):
                self._waiters.remove((pattern, future, loop))
                loop.call_soon_threadsafe(_resolve, future, message)

    async def wait_for(self, pattern: str, within: float = 10.0) -> str:
        """The first record (past or future) matching ``pattern``."""
        regex = re.compile(pattern)
        for message in self.messages:
            if regex.search(message):
                return message
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._waiters.append((regex, future, loop))
        try:
            async with asyncio.timeout(within):
                return await future
        except TimeoutError:
            recent = "\n".join(self.messages[-20:])
            raise AssertionError(
                f"no log record matching {pattern!r} within {within}s; recent:\n{recent}"
            ) from None

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile(pattern)
        return [m for m in self.messages if regex.search(m)]


def _resolve(future: asyncio.Future[str], message: str) -> None:
    if not future.done():
        future.set_result(message)


@pytest.fixture
def logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("stepweave.devices")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(previous)


@asynccontextmanager
async def raw_client(url: str, **options: Any) -> AsyncIterator[aiomqtt.Client]:
    """A bare MQTT client: the forger, the duplicate sender, the ACL prober."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    async with aiomqtt.Client(
        host,
        int(port),
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        identifier=f"test-{uuid.uuid4().hex[:8]}",
        **options,
    ) as client:
        yield client


async def publish_each(url: str, messages: list[tuple[str, bytes]], *, tries: int = 3) -> None:
    """Publish each (topic, payload) at QoS 1 from a bare client, in order.

    The attacker is test equipment, not the product under test: if the broker drops it
    (amqtt once reset such a connection under a loaded suite, and the next PUBACK never
    came), it connects again and goes on from the first message not acknowledged. A
    message sent twice is only a second rejection of the same garbage.
    """
    pending = list(messages)
    for attempt in range(1, tries + 1):
        try:
            async with raw_client(url, timeout=5) as client:
                while pending:
                    topic, payload = pending[0]
                    await client.publish(topic, payload, qos=1)
                    pending.pop(0)
            return
        except aiomqtt.MqttError:
            if attempt == tries:
                raise


async def next_message(client: aiomqtt.Client, within: float = 5.0) -> aiomqtt.Message:
    async with asyncio.timeout(within):
        async for message in client.messages:
            return message
    raise AssertionError("unreachable")
