"""``Link``: one MQTT connection that stays up, shared by the agent and the dispatcher.

aiomqtt has no automatic reconnect, so this is ours: connect, subscribe, hand every
message to one synchronous router, and when the connection drops, reconnect with
exponential backoff and jitter and subscribe again. Each connection uses a fresh
``aiomqtt.Client``: a reused one would let paho replay QoS 1 messages it queued while
disconnected, behind the back of our own, explicit queueing (``publish(reliable=True)``).

aiomqtt errors never leave this module: they become ``BrokerConnectionError``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from .errors import BrokerConnectionError
from .settings import BrokerSettings
from .tasks import TaskScope

__all__ = ["Link"]

_log = logging.getLogger("stepweave.devices.link")

#: CONNACK codes that mean "you may not", as opposed to "not now" (3.1.1 codes 1, 2, 4, 5
#: and their MQTT 5 equivalents, which paho reports for either protocol).
_REFUSED = {1, 2, 4, 5, 128, 129, 130, 132, 133, 134, 135, 138, 140}


class _Connection:
    __slots__ = ("client", "lost")

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Link:
    """A self-healing MQTT connection. Enter it to connect; leave it to disconnect.

    ``on_message`` runs for every message, synchronously and in order (aiomqtt has one
    queue per client, so one consumer routes by topic). ``on_connect`` runs after each
    (re)connection and subscription, before messages flow: re-announce, re-send.

    The connection loop is a task of the link's own ``TaskGroup``, entered (with its
    stop) on one ``AsyncExitStack`` that ``close`` unwinds, as aiomqtt keeps a client's
    background loops in one task group.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        client_id: str,
        on_message: Callable[[aiomqtt.Message], None],
        subscriptions: Sequence[tuple[str, int]] = (),
        on_connect: Callable[[], Awaitable[None]] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        will: aiomqtt.Will | None = None,
        keepalive: int = 10,
        connect_timeout: float = 10.0,
        publish_timeout: float = 5.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        max_inflight: int = 256,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self._on_message = on_message
        self._subscriptions = list(subscriptions)
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._will = will
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._backoff = backoff
        self._max_inflight = max_inflight
        self._current: _Connection | None = None
        self._connected = asyncio.Event()
        self._fatal: BrokerConnectionError | None = None
        self._closed = False
        self._entered = False
        self._stack: AsyncExitStack | None = None
        self._first: asyncio.Future[None] | None = None
        self._last_error = "no attempt yet"
        #: Connections made so far (a reconnect increments it).
        self.connections = 0

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Link:
        if self._entered:
            raise RuntimeError("a Link can be entered only once")
        self._entered = True
        self._first = asyncio.get_running_loop().create_future()
        async with AsyncExitStack() as stack:
            tasks = TaskScope(await stack.enter_async_context(asyncio.TaskGroup()))
            stack.push_async_callback(tasks.stop)
            stack.callback(self._stop_reconnecting)  # first on exit: publishers see it
            tasks.start(self._run(), name=f"stepweave-mqtt-{self.client_id}")
            self._stack = stack.pop_all()
        # Waited for outside the stack: an error leaving a TaskGroup's block would come
        # out wrapped in an ExceptionGroup; ``close`` unwinds the stack without it.
        try:
            async with asyncio.timeout(self._connect_timeout):
                await asyncio.shield(self._first)
        except TimeoutError:
            await self.close()
            raise BrokerConnectionError(
                f"cannot reach the MQTT broker at {self.settings.url} within "
                f"{self._connect_timeout:g}s: {self._last_error}"
            ) from None
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Disconnect cleanly (no last will is sent) and stop reconnecting."""
        self._stop_reconnecting()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def _stop_reconnecting(self) -> None:
        self._closed = True
        self._connected.set()  # wake publishers waiting for a connection: they will see _closed

    @property
    def connected(self) -> bool:
        return self._current is not None

    @property
    def backlog(self) -> int:
        """Messages received but not yet handled: a long queue means we, not the senders, are slow."""
        connection = self._current
        return len(connection.client.messages) if connection is not None else 0

    async def wait_connected(self) -> None:
        """Return once connected; ``BrokerConnectionError`` if the link gave up or was closed."""
        while self._current is None:
            self._raise_if_dead()
            await self._connected.wait()
        self._raise_if_dead()

    def _raise_if_dead(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise BrokerConnectionError(f"the connection to {self.settings.url} is closed")

    # -- publishing -------------------------------------------------------------------

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, reliable: bool = False
    ) -> bool:
        """Publish; return whether the broker took it (QoS 1: it acknowledged it).

        Unreliable publishes give up at once when disconnected. Reliable ones wait for
        the next connection and try again until the broker has the message or the link
        is closed (``BrokerConnectionError``): this is how results computed while
        disconnected reach the orchestrator after a reconnect.
        """
        while True:
            connection = self._current
            if connection is None:
                if not reliable or self._closed:
                    return False
                await self.wait_connected()
                continue
            task = asyncio.current_task()
            cancels = task.cancelling() if task is not None else 0
            try:
                await connection.client.publish(
                    topic, payload, qos=qos, retain=retain, timeout=self._publish_timeout
                )
                if task is not None and task.cancelling() > cancels:
                    # aiomqtt waits with asyncio.wait_for, which on Python 3.11 swallows a
                    # cancellation that arrives as the publish completes: restore it, or a
                    # cancelled step or a closing agent would carry on as if nothing happened.
                    raise asyncio.CancelledError
                return True
            except aiomqtt.MqttError as exc:
                _log.debug("publish to %s failed: %s", topic, exc)
                if not reliable or self._closed:
                    return False
                # Retry on the next connection, or on this one if it was only slow.
                await asyncio.wait([connection.lost], timeout=self._publish_timeout)

    # -- subscriptions ----------------------------------------------------------------

    async def subscribe(self, topic: str, qos: int = 1) -> bool:
        """Add a subscription, now and after every reconnect; return whether the broker has it now."""
        if (topic, qos) not in self._subscriptions:
            self._subscriptions.append((topic, qos))
        return await self._call(lambda client: client.subscribe(topic, qos, timeout=self._publish_timeout))

    async def unsubscribe(self, topic: str) -> bool:
        """Drop a subscription (the broker stops sending at once; queued messages still arrive)."""
        self._subscriptions = [(t, q) for t, q in self._subscriptions if t != topic]
        return await self._call(lambda client: client.unsubscribe(topic, timeout=self._publish_timeout))

    async def _call(self, request: Callable[[aiomqtt.Client], Awaitable[object]]) -> bool:
        connection = self._current
        if connection is None:
            return False  # the next connection subscribes from the list
        try:
            await request(connection.client)
        except aiomqtt.MqttError as exc:
            _log.debug("a (un)subscribe on %s failed: %s", self.client_id, exc)
            return False
        return True

    # -- the connection loop ----------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            **self.settings.client_options(),
            identifier=self.client_id,
            will=self._will,
            keepalive=self._keepalive,
            # One attempt gets a fraction of the overall connect budget: a broker that
            # drops a CONNECT on the floor (amqtt does, under load) costs one short retry,
            # not the whole budget.
            timeout=max(1.0, min(3.0, self._connect_timeout / 3)),
            clean_session=True,
            max_inflight_messages=self._max_inflight,
        )
        # aiomqtt logs a warning for every call beyond 10 pending; a busy dispatcher has
        # hundreds in flight by design (bounded by the per-device windows).
        client.pending_calls_threshold = 1 << 30
        return client

    async def _run(self) -> None:
        try:
            await self._reconnecting()
        except Exception as exc:
            # A bug, not a broker problem: log it and fail whoever waits for a connection,
            # rather than cancel whichever task happened to open the link (the task group's
            # answer to a failed child).
            _log.error("the connection loop of %s failed", self.client_id, exc_info=exc)
            self._fatal = BrokerConnectionError(f"the connection loop of {self.client_id} failed: {exc!r}")
            if self._first is not None and not self._first.done():
                self._first.set_exception(self._fatal)
            self._connected.set()

    async def _reconnecting(self) -> None:
        delay = self._backoff[0]
        while not self._closed:
            connection: _Connection | None = None
            try:
                client = self._client()
                async with client:
                    connection = _Connection(client)
                    if self._subscriptions:
                        await client.subscribe(list(self._subscriptions))
                    self.connections += 1
                    self._current = connection
                    self._connected.set()
                    delay = self._backoff[0]
                    if self._first is not None and not self._first.done():
                        self._first.set_result(None)
                    else:
                        _log.info("reconnected to %s", self.settings.url)
                    if self._on_connect is not None:
                        try:
                            await self._on_connect()
                        except aiomqtt.MqttError:
                            raise
                        except Exception:
                            _log.exception("error in the on-connect handler of %s", self.client_id)
                    async for message in client.messages:
                        try:
                            self._on_message(message)
                        except Exception:
                            # One bad message (or a bug in a handler) must not end the loop.
                            _log.exception("error while handling a message on %s", message.topic)
            except MqttConnectError as exc:
                self._last_error = str(exc)
                if _refused(exc) and self._first is not None and not self._first.done():
                    self._fatal = BrokerConnectionError(
                        f"the broker at {self.settings.url} refused us: {exc}"
                    )
                    self._first.set_exception(self._fatal)
                    self._connected.set()
                    return
                _log.warning("cannot connect to %s: %s; retrying in %.2gs", self.settings.url, exc, delay)
            except (OSError, ValueError) as exc:
                # A configuration problem (unreadable CA file, bad certificate): fatal at start.
                self._last_error = f"{type(exc).__name__}: {exc}"
                if self._first is not None and not self._first.done():
                    self._fatal = BrokerConnectionError(
                        f"cannot connect to {self.settings.url}: {self._last_error}"
                    )
                    self._first.set_exception(self._fatal)
                    self._connected.set()
                    return
                _log.warning(
                    "cannot connect to %s: %s; retrying in %.2gs", self.settings.url, self._last_error, delay
                )
            except aiomqtt.MqttError as exc:
                self._last_error = str(exc)
                if (
                    connection is None
                    and isinstance(exc.__context__, ConnectionRefusedError)
                    and self._first is not None
                    and not self._first.done()
                ):
                    # Nothing listens there: waiting out the connect timeout in silence
                    # helps nobody (a broker that is restarting is a reconnect, not this).
                    self._fatal = BrokerConnectionError(
                        f"cannot connect to {self.settings.url}: connection refused "
                        "(nothing listens there: is the broker running, and is the port right?)"
                    )
                    self._first.set_exception(self._fatal)
                    self._connected.set()
                    return
                if connection is not None:
                    # Name the client: an orchestrator and its local agents share one log.
                    _log.warning(
                        "%s lost the connection to %s: %s; reconnecting",
                        self.client_id,
                        self.settings.url,
                        exc,
                    )
                else:
                    _log.info("cannot connect to %s: %s; retrying in %.2gs", self.settings.url, exc, delay)
            finally:
                if connection is not None:
                    self._current = None
                    self._connected.clear()
                    connection.lost.set_result(None)
                    if self._on_disconnect is not None:
                        self._on_disconnect()
            # Jitter spreads a fleet's reconnects after a broker restart.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff[1])


def _refused(exc: MqttConnectError) -> bool:
    code = exc.rc if isinstance(exc.rc, int) else getattr(exc.rc, "value", None)
    return code in _REFUSED
