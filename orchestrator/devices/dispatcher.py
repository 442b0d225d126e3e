"""``DeviceExecutor``: the orchestrator side, an ``Executor`` for tasks that target devices.

```python
async with DeviceExecutor(broker="mqtt://broker:1883") as devices:
    result = await Orchestrator(tools=[ping], executors={"device": devices}).run(graph)
```

For each call it picks a live device that offers the tool (same argument schema) and
matches the target, least loaded first, within each device's concurrency limit; sends the
request; and waits for the outcome. Nothing relies on broker sessions:

- acknowledgement is ours: no ``Accepted`` (or result) within ``ack_timeout`` → re-send;
  a device that stays alive yet never acknowledges is given up for this task;
- liveness is ours: heartbeats with a deadline, plus the last will;
- a device lost while it holds a task → the task goes to another capable device with
  the same task key and the attempt incremented, or fails with ``DeviceUnavailable``;
- a result counts only from the device the task is assigned to, for the current attempt,
  echoing the request's random nonce: anything else is dropped and logged;
- when ``execute()`` is cancelled (run cancelled, step timed out) the device is told.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Collection
from types import TracebackType
from typing import Any, TypeVar

import aiomqtt

from tools import Tool

from ..executors import ToolCall
from .assignment import Assigner, Placement
from .errors import DeviceUnavailable, MessageRejected, RemoteTaskError
from .link import Link
from .protocol import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_NAMESPACE,
    Accepted,
    Cancel,
    Heartbeat,
    Ping,
    Progress,
    ProtocolError,
    ReplyMessage,
    Result,
    Status,
    TaskFailure,
    TaskRequest,
    Topics,
    decode,
    encode,
    schema_digest,
    validate_device_id,
)
from .registry import DeviceInfo, DeviceRegistry, _Device
from .settings import BrokerSettings

__all__ = ["DeviceExecutor"]

#: What devices announce on their own topics (each names its sender).
_Announcement = TypeVar("_Announcement", Status, Heartbeat)

_log = logging.getLogger("stepweave.devices.dispatcher")

#: Heartbeats in a row that must omit an acknowledged task before we ask again.
_MISSES_BEFORE_RESEND = 2


class _Lost:
    """The assigned device can no longer deliver this attempt: try another."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


_Outcome = Result | TaskFailure | _Lost


class _Job:
    """One ``execute()`` call: a task key, moving between devices until it has an outcome."""

    __slots__ = (
        "accepted",
        "ack_timer",
        "attempt",
        "call",
        "deadline",
        "delivered",
        "device",
        "key",
        "misses",
        "nonce",
        "outcome",
        "payload",
        "placement",
        "sent_at",
        "unacknowledged",
    )

    def __init__(self, key: str, call: ToolCall, digest: str, deadline: float) -> None:
        self.key = key
        self.call = call
        self.placement = Placement(call.task.id, call.task.tool, digest, call.task.target)
        self.deadline = deadline
        self.device: _Device | None = None
        self.attempt = 0
        self.nonce = ""
        self.payload = b""
        self.outcome: asyncio.Future[_Outcome] | None = None
        self.accepted = False
        #: The broker took the current attempt's request: the device may be running it.
        self.delivered = False
        self.unacknowledged = 0
        self.misses = 0
        self.sent_at = 0.0
        self.ack_timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> bool:
        return self.outcome is not None and not self.outcome.done()

    def stop_ack_timer(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None


class DeviceExecutor:
    """Runs tool calls on remote device agents through an MQTT broker.

    Enter it (``async with``) to connect; it may be entered by several runs at once and
    disconnects after the last one leaves.

    Args:
        broker: ``mqtt://`` / ``mqtts://`` URL or ``BrokerSettings``; ``None`` reads
            ``$STEPWEAVE_BROKER``.
        namespace: topic prefix shared with the agents.
        orchestrator_id: our name in result topics (random by default).
        ack_timeout: seconds to wait for ``Accepted`` before re-sending a request.
        max_unacknowledged: re-sends a live device may ignore before the task moves on.
        heartbeat_misses: heartbeat intervals of silence before a device counts as lost.
        device_wait: seconds a task waits for a capable device to appear before
            ``DeviceUnavailable`` (a full device is waited for as long as the task may run).
        default_deadline: a request's deadline when neither task nor tool sets a timeout.
        max_payload: largest message sent or accepted, in bytes.
    """

    def __init__(
        self,
        broker: str | BrokerSettings | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        orchestrator_id: str | None = None,
        ack_timeout: float = 1.0,
        max_unacknowledged: int = 3,
        heartbeat_misses: float = 3.0,
        device_wait: float = 5.0,
        default_deadline: float = 3600.0,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        keepalive: int = 10,
        connect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
    ) -> None:
        if ack_timeout <= 0 or device_wait < 0 or default_deadline <= 0:
            raise ValueError("ack_timeout and default_deadline must be > 0, device_wait >= 0")
        self.settings = BrokerSettings.resolve(broker)
        self.topics = Topics(namespace)
        self.orchestrator_id = validate_device_id(orchestrator_id or f"orch-{secrets.token_hex(6)}")
        self._ack_timeout = ack_timeout
        self._max_unacknowledged = max(1, max_unacknowledged)
        self._default_deadline = default_deadline
        self._max_payload = max_payload
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._registry = registry = DeviceRegistry(
            on_lost=self._device_lost,
            on_alive=lambda device: self._changed(),
            ping=self._ping,
            heartbeat_misses=heartbeat_misses,
        )
        self._assigner = Assigner(registry, device_wait=device_wait)
        self._results_prefix = self.topics.results(self.orchestrator_id, "")
        self._jobs: dict[str, _Job] = {}
        self._digests: dict[Tool, str] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._change = asyncio.Event()
        self._link: Link | None = None
        self._users = 0
        self._lock = asyncio.Lock()
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> DeviceExecutor:
        async with self._lock:
            if self._users == 0:
                await self._open()
            self._users += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                await self._close()

    async def _open(self) -> None:
        self._closed = False
        self._assigner.open()
        self._change = asyncio.Event()  # a fresh one: this entry may run on another event loop
        topics = self.topics
        link = Link(
            self.settings,
            client_id=f"stepweave-{self.orchestrator_id}",
            on_message=self._route,
            subscriptions=[
                (topics.all_status(), 1),
                (topics.all_heartbeats(), 0),
                (topics.all_results(self.orchestrator_id), 1),
            ],
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            keepalive=self._keepalive,
            connect_timeout=self._connect_timeout,
            backoff=self._backoff,
        )
        await link.__aenter__()
        self._link = link

    async def _close(self) -> None:
        self._closed = True
        for job in self._jobs.values():
            if job.outcome is not None and not job.outcome.done():
                job.outcome.set_result(_Lost("the device executor was closed"))
        self._assigner.close()
        if self._background:
            # Let cancel messages reach their devices before we disconnect.
            await asyncio.wait(self._background, timeout=self._ack_timeout)
            leftovers = list(self._background)
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
        self._registry.close()
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    # -- public views -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    @property
    def devices(self) -> dict[str, DeviceInfo]:
        """Every device this executor knows of, alive or not, by id."""
        return {device.device_id: device.info() for device in self._registry}

    async def wait_for_devices(
        self, count: int = 1, *, ids: Collection[str] = (), within: float = 10.0
    ) -> list[DeviceInfo]:
        """Wait until at least ``count`` devices (and every one in ``ids``) are alive."""
        wanted = set(ids)
        try:
            async with asyncio.timeout(within):
                while True:
                    alive = {d.device_id: d for d in self._registry if d.alive}
                    if len(alive) >= count and wanted <= alive.keys():
                        return [d.info() for d in alive.values()]
                    await self._change.wait()
        except TimeoutError:
            alive_ids = sorted(d.device_id for d in self._registry if d.alive)
            missing = sorted(wanted - set(alive_ids))
            including = f" including {', '.join(missing)}" if missing else ""
            raise DeviceUnavailable(
                f"waited {within:g}s for {max(count, len(wanted))} device(s){including}; "
                f"alive: {', '.join(alive_ids) or 'none'}"
            ) from None

    # -- the Executor protocol --------------------------------------------------------

    async def execute(self, call: ToolCall) -> Any:
        """Run ``call`` on a device chosen by its task's ``target``; return the validated result."""
        if self._link is None or self._closed:
            raise RuntimeError("enter the DeviceExecutor first: `async with DeviceExecutor(...)`")
        loop = asyncio.get_running_loop()
        key = f"{call.run_id}/{call.task.id}#{call.attempt}"
        if key in self._jobs:
            raise RuntimeError(f"task key {key!r} is already being executed")
        budget = call.task.timeout or call.tool.timeout or self._default_deadline
        job = _Job(key, call, self._digest(call.tool), loop.time() + budget)
        self._jobs[key] = job
        try:
            while True:
                device = await self._assigner.acquire(job.placement)
                outcome = await self._attempt(job, device)
                if isinstance(outcome, Result):
                    return call.tool.validate_result(outcome.output)
                if isinstance(outcome, TaskFailure) and outcome.code in ("tool", "deadline"):
                    raise RemoteTaskError(
                        f"{outcome.error_type} on device {device.device_id!r}: {outcome.message}",
                        device_id=device.device_id,
                        remote_type=outcome.error_type,
                        retryable=outcome.retryable,
                    )
                reason = outcome.reason if isinstance(outcome, _Lost) else outcome.message
                if isinstance(outcome, _Lost) and job.delivered and not self._may_move(call):
                    error = DeviceUnavailable(
                        f"task {call.task.id!r} is not idempotent, so it was not moved to another device "
                        f"after {device.device_id} {reason}: it may have run there, in part or in full"
                    )
                    error.retryable = False
                    raise error
                job.placement.excluded.add(device.device_id)
                job.placement.history.append(f"{device.device_id} {reason}")
                if self._closed:
                    raise DeviceUnavailable(f"task {call.task.id!r}: {reason}")
                _log.warning(
                    "task %s: device %s %s; moving it to another device", key, device.device_id, reason
                )
        finally:
            del self._jobs[key]

    @staticmethod
    def _may_move(call: ToolCall) -> bool:
        """Whether work a lost device had accepted may run again elsewhere.

        Only an explicit ``idempotent: false`` (on the task, else on the tool) forbids it,
        and then from the moment the broker took the request: the device may have started.
        """
        idempotent = call.task.idempotent if call.task.idempotent is not None else call.tool.idempotent
        return idempotent is not False

    def _digest(self, tool: Tool) -> str:
        digest = self._digests.get(tool)
        if digest is None:
            digest = self._digests[tool] = schema_digest(tool.parameters_schema)
        return digest

    def _changed(self) -> None:
        self._assigner.changed()
        self._change.set()
        self._change = asyncio.Event()

    # -- one attempt on one device ----------------------------------------------------

    async def _attempt(self, job: _Job, device: _Device) -> _Outcome:
        loop = asyncio.get_running_loop()
        call = job.call
        job.device = device
        job.attempt += 1
        job.nonce = secrets.token_hex(8)
        job.accepted = False
        job.delivered = False
        job.unacknowledged = 0
        job.misses = 0
        outcome: asyncio.Future[_Outcome] = loop.create_future()
        job.outcome = outcome
        device.jobs.add(job.key)
        try:
            request = TaskRequest(
                orchestrator=self.orchestrator_id,
                run_id=call.run_id,
                task_id=call.task.id,
                key=job.key,
                attempt=job.attempt,
                nonce=job.nonce,
                tool=call.task.tool,
                args=call.args,
                timeout=max(job.deadline - loop.time(), 0.001),
                ack_timeout=self._ack_timeout,
            )
            try:
                job.payload = encode(request, max_payload=self._max_payload)
            except ProtocolError as exc:
                raise MessageRejected(f"task {call.task.id!r}: cannot send the request: {exc}") from None
            await self._send(job)
            return await outcome
        except asyncio.CancelledError:
            # Our cancellation also cancels the awaited future: only a real outcome means
            # the device has already stopped on its own.
            if outcome.cancelled() or not outcome.done():
                self._spawn(self._cancel_remote(device, job.key))
            raise
        finally:
            job.stop_ack_timer()
            job.device = None
            device.jobs.discard(job.key)
            self._assigner.release(device)

    async def _send(self, job: _Job) -> None:
        """Publish the current attempt's request and arm its acknowledgement timer."""
        device, attempt, link = job.device, job.attempt, self._link
        if device is None or link is None:
            return
        sent = await link.publish(self.topics.tasks(device.device_id), job.payload, qos=1)
        if job.attempt != attempt:
            return
        job.delivered = job.delivered or sent
        if not job.waiting or job.accepted:
            return
        if not sent:
            return  # disconnected: _connected() re-sends every waiting request
        loop = asyncio.get_running_loop()
        job.sent_at = loop.time()
        job.stop_ack_timer()
        job.ack_timer = loop.call_later(self._ack_timeout, self._ack_overdue, job, attempt)

    def _ack_overdue(self, job: _Job, attempt: int) -> None:
        job.ack_timer = None
        device = job.device
        if device is None or job.attempt != attempt or job.accepted or not job.waiting or not self.connected:
            return
        # Count it against the device only if we heard from it since sending: silence
        # is the heartbeat deadline's business, not the acknowledgement's.
        if device.heard > job.sent_at:
            job.unacknowledged += 1
        if job.unacknowledged >= self._max_unacknowledged:
            assert job.outcome is not None
            job.outcome.set_result(
                _Lost(f"did not acknowledge the request ({job.unacknowledged} sends) although it is alive")
            )
            return
        _log.info("task %s: no acknowledgement from %s yet; re-sending", job.key, device.device_id)
        self._ping(device.device_id)
        self._spawn(self._send(job))

    async def _cancel_remote(self, device: _Device, key: str) -> None:
        link = self._link
        if link is None:
            return
        message = Cancel(key=key, reason="the orchestrator stopped waiting (step timed out or run cancelled)")
        await link.publish(self.topics.control(device.device_id), encode(message), qos=1)

    def _ping(self, device_id: str) -> None:
        if self._link is not None and self._link.connected:
            self._spawn(self._link.publish(self.topics.control(device_id), encode(Ping()), qos=0))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _resend(self, jobs: Collection[str]) -> None:
        for key in jobs:
            job = self._jobs.get(key)
            if job is not None and job.waiting and job.device is not None:
                job.unacknowledged = 0
                job.misses = 0
                self._spawn(self._send(job))

    # -- connection events ------------------------------------------------------------

    async def _connected(self) -> None:
        self._registry.resume()
        # Requests (or their results) may have died with the old connection: ask again.
        # Agents de-duplicate by task key, so a repeat costs a message, never a re-run.
        self._resend(list(self._jobs))

    def _disconnected(self) -> None:
        self._registry.pause()
        for job in self._jobs.values():
            job.stop_ack_timer()

    def _device_lost(self, device: _Device, reason: str) -> None:
        for key in list(device.jobs):
            job = self._jobs.get(key)
            if job is not None and job.outcome is not None and not job.outcome.done():
                job.outcome.set_result(_Lost(reason))
        self._changed()

    # -- incoming messages ------------------------------------------------------------

    def _route(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload
        if topic.startswith(self._results_prefix):
            self._on_reply(topic[len(self._results_prefix) :], payload)
            return
        device_id = self.topics.device_of(topic)
        if device_id is None:
            return
        if topic.endswith("/heartbeat"):
            self._on_heartbeat(device_id, payload)
        elif topic.endswith("/status"):
            self._on_status(device_id, payload, retained=message.retain)

    def _on_status(self, device_id: str, payload: bytes | bytearray, *, retained: bool) -> None:
        if not payload:
            self._registry.forget(device_id)  # its retained status was cleared: it left the fleet
            return
        status = self._from_device(device_id, payload, Status, "status", "the status")
        if status is None:
            return
        known = self._registry.get(device_id)
        self._registry.on_status(status, retained=retained)
        device = self._registry.get(device_id)
        if (
            device is not None
            and device is known
            and not retained
            and status.state == "online"
            and device.jobs
        ):
            # The agent re-announced: it reconnected, and may have missed our requests.
            self._resend(list(device.jobs))
        self._changed()

    def _from_device(
        self,
        device_id: str,
        payload: bytes | bytearray,
        kind: type[_Announcement],
        what: str,
        one: str,
    ) -> _Announcement | None:
        """``payload`` decoded as ``kind``, or None (logged) if it is malformed or names a
        device other than the one whose topic it came on: a client cannot speak for
        another device."""
        try:
            message: _Announcement = decode(payload, kind, max_payload=self._max_payload)
        except ProtocolError as exc:
            _log.warning("rejected %s of device %s: %s", one, device_id, exc)
            return None
        if message.device_id != device_id:
            _log.warning(
                "dropped a %s claiming device %r on the topic of %r", what, message.device_id, device_id
            )
            return None
        return message

    def _on_heartbeat(self, device_id: str, payload: bytes | bytearray) -> None:
        beat = self._from_device(device_id, payload, Heartbeat, "heartbeat", "a heartbeat")
        if beat is None:
            return
        device = self._registry.on_heartbeat(beat)
        if device is None or not device.jobs:
            return
        running = set(beat.running)
        for key in list(device.jobs):
            job = self._jobs.get(key)
            if job is None or not job.accepted or not job.waiting:
                continue
            if key in running:
                job.misses = 0
                continue
            job.misses += 1
            if job.misses >= _MISSES_BEFORE_RESEND:
                # It acknowledged the task but no longer holds it: its result was lost on
                # the way. Asking again returns the cached result.
                _log.info("task %s: %s no longer holds it; asking for its result again", key, device_id)
                job.misses = 0
                self._spawn(self._send(job))

    def _on_reply(self, device_id: str, payload: bytes | bytearray) -> None:
        try:
            reply: Accepted | Progress | Result | TaskFailure = decode(
                payload, ReplyMessage, max_payload=self._max_payload
            )
        except ProtocolError as exc:
            _log.warning("rejected a message from device %s: %s", device_id, exc)
            return
        if reply.device_id != device_id:
            _log.warning(
                "dropped a forged %s for task %s: it claims device %r but came on the topic of %r",
                reply.type,
                reply.key,
                reply.device_id,
                device_id,
            )
            return
        job = self._jobs.get(reply.key)
        if job is None:
            _log.debug(
                "ignored a late %s for %s from %s: nothing waits for it", reply.type, reply.key, device_id
            )
            return
        device = job.device
        if device is None or device.device_id != device_id or reply.attempt != job.attempt:
            assigned = device.device_id if device is not None else "no device"
            _log.warning(
                "dropped a %s for task %s from device %s (attempt %d): the task is assigned to %s, "
                "attempt %d (forged, or stale after a failover)",
                reply.type,
                reply.key,
                device_id,
                reply.attempt,
                assigned,
                job.attempt,
            )
            return
        if not secrets.compare_digest(reply.nonce, job.nonce):
            _log.warning(
                "dropped a forged %s for task %s from %s: wrong nonce", reply.type, reply.key, device_id
            )
            return
        outcome = job.outcome
        if outcome is None or outcome.done():
            return
        if isinstance(reply, Accepted):
            job.accepted = True
            job.stop_ack_timer()
        elif isinstance(reply, Progress):
            job.accepted = True  # it is running there
            job.stop_ack_timer()
            context = job.call.context
            if context is not None:
                context.report(reply.fraction, reply.message)
        else:
            job.stop_ack_timer()
            outcome.set_result(reply)
