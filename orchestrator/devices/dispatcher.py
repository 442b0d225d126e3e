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
  a task that may not move (not idempotent) waits ``lost_grace`` for the device to come
  back or its result to arrive, because silence may be our own inbox being flooded;
- a device that never acknowledges a request is avoided for a while; the request moves
  on if it may (idempotent), or if the device itself says it never received it (see
  ``_probe``); a non-idempotent task goes to proven devices first;
- each device gets a message budget (``max_device_rate``): a flood from one device is
  dropped before it is parsed or logged, and cannot starve the others;
- ``trust`` pins which devices are used and which labels are believed;
- a result counts only from the device the task is assigned to, for the current attempt,
  echoing the request's random nonce: anything else is dropped and logged;
- when ``execute()`` is cancelled (run cancelled, step timed out) the device is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Collection
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar

import aiomqtt

from tools import Tool
from tools.errors import ToolArgumentError

from ..executors import ToolCall
from ..telemetry.devices import trace_fields, traced_dispatch
from .assignment import Assigner, Placement
from .catalog import FleetTool, RemoteTool, fleet_tools
from .errors import DeviceUnavailable, MessageRejected, RemoteTaskError
from .link import Link
from .protocol import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_NAMESPACE,
    Accepted,
    Cancel,
    Capability,
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
from .tasks import TaskScope
from .trust import DeviceTrust

__all__ = ["DeviceExecutor"]

#: What devices announce on their own topics (each names its sender).
_Announcement = TypeVar("_Announcement", Status, Heartbeat)

_log = logging.getLogger("stepweave.devices.dispatcher")

#: Heartbeats in a row that must omit an acknowledged task before we ask again.
_MISSES_BEFORE_RESEND = 2
#: Unhandled messages in our own inbox beyond which silence says nothing about a device.
_BACKLOG = 50
#: Rejected messages logged per device and rate window; the rest are only counted.
_COMPLAINTS_PER_WINDOW = 10


class _Lost:
    """The assigned device can no longer deliver this attempt: try another.

    ``undelivered``: the device itself said it never received the request, so even a task
    that may not run twice can move.
    """

    __slots__ = ("reason", "undelivered")

    def __init__(self, reason: str, *, undelivered: bool = False) -> None:
        self.reason = reason
        self.undelivered = undelivered


class _Budget:
    """A token bucket: ``rate`` messages a second, bursts up to ``burst``."""

    __slots__ = ("complaints", "complaints_since", "dropped", "last", "logged", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.last = now
        self.dropped = 0
        self.logged = -1e9
        #: Rejected messages logged in the window that began at ``complaints_since``.
        self.complaints = 0
        self.complaints_since = now

    def take(self, rate: float, burst: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False


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
        "orphan_timer",
        "outcome",
        "payload",
        "placement",
        "probe",
        "sent_at",
        "unacknowledged",
    )

    def __init__(self, key: str, call: ToolCall, digest: str, deadline: float, *, careful: bool) -> None:
        self.key = key
        self.call = call
        self.placement = Placement(call.task.id, call.task.tool, digest, call.task.target, careful=careful)
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
        #: The id of the ping asking the device whether it ever received this request.
        self.probe = ""
        #: Its device was lost but the task may not move: how long we still wait for it.
        self.orphan_timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> bool:
        return self.outcome is not None and not self.outcome.done()

    def stop_ack_timer(self) -> None:
        if self.ack_timer is not None:
            self.ack_timer.cancel()
            self.ack_timer = None

    def stop_orphan_timer(self) -> None:
        if self.orphan_timer is not None:
            self.orphan_timer.cancel()
            self.orphan_timer = None


class DeviceExecutor:
    """Runs tool calls on remote device agents through an MQTT broker.

    Enter it (``async with``) to connect; it may be entered by several runs at once and
    disconnects after the last one leaves. Each connection is one ``AsyncExitStack``:
    one ``TaskGroup`` for the background sends, the link, and the shutdown, unwound in
    reverse when the last user leaves (or on ``aclose``).

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
        trust: which devices to use and which labels to believe (``DeviceTrust``);
            everything by default.
        max_device_concurrency: most of our tasks on one device, whatever it claims.
        max_device_rate: messages a second one device may send us (bursts of twice as
            many); the excess is dropped unread and logged once per ``rate_window``.
        lost_grace: seconds a task that may not move keeps waiting for a device that went
            silent or lost its connection (default: three heartbeat-silence limits, >= 5 s).
        startup_wait: before the first assignment, seconds to wait for the devices known
            from their retained statuses to answer a ping: otherwise the first to answer
            would take every task of a short run.
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
        trust: DeviceTrust | None = None,
        max_device_concurrency: int = 16,
        max_device_rate: float = 200.0,
        rate_window: float = 10.0,
        lost_grace: float | None = None,
        keepalive: int = 10,
        connect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        startup_wait: float = 1.0,
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
        self.trust = trust or DeviceTrust()
        self._heartbeat_misses = heartbeat_misses
        self._rate = max_device_rate
        self._burst = 2 * max_device_rate
        self._rate_window = rate_window
        self._budgets: dict[str, _Budget] = {}
        #: ``time.monotonic()`` when a device last went over its budget.
        self._flooded_at = -1e9
        self._lost_grace = lost_grace
        #: Device ids ignored because of ``trust`` (logged once each).
        self._ignored: set[str] = set()
        #: Devices whose heartbeat topic we subscribed to; those muted for flooding.
        self._followed: set[str] = set()
        #: Followed devices whose heartbeat subscription the broker has confirmed.
        self._listening: set[str] = set()
        self._muted: dict[str, asyncio.TimerHandle] = {}
        #: Pings awaiting their echo: id → (device id, task key probed or "").
        self._pings: dict[str, tuple[str, str]] = {}
        self._ping_seq = 0
        self._registry = registry = DeviceRegistry(
            on_lost=self._device_lost,
            on_alive=self._device_alive,
            ping=self._ping,
            heartbeat_misses=heartbeat_misses,
            busy=self._inbox_busy,
            trust=self.trust,
            max_device_concurrency=max_device_concurrency,
        )
        self._assigner = Assigner(registry, device_wait=device_wait)
        self._results_prefix = self.topics.results(self.orchestrator_id, "")
        self._jobs: dict[str, _Job] = {}
        self._digests: dict[Tool, str] = {}
        #: Device-only tools as announced after the run learned them, by schema digest.
        self._versions: dict[str, RemoteTool] = {}
        self._change = asyncio.Event()
        self._link: Link | None = None
        #: The open connection: link, task group, shutdown (``None`` while closed).
        self._stack: AsyncExitStack | None = None
        #: Background sends of the open connection, in its task group.
        self._tasks = TaskScope(None)
        self._users = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._startup_wait = startup_wait
        self._startup: asyncio.Task[None] | None = None
        #: Loop time of the last status message (retained ones arrive in a burst at connect).
        self._last_status = 0.0

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
            if self._users == 0:
                return  # closed already by ``aclose``
            self._users -= 1
            if self._users == 0:
                await self._close()

    async def aclose(self) -> None:
        """Disconnect now, whoever entered it: calls still waiting fail as lost."""
        async with self._lock:
            if self._users > 0:
                self._users = 0
                await self._close()

    async def _open(self) -> None:
        self._closed = False
        self._assigner.open()
        self._change = asyncio.Event()  # a fresh one: this entry may run on another event loop
        self._startup = None
        self._last_status = asyncio.get_running_loop().time()
        topics = self.topics
        link = Link(
            self.settings,
            client_id=f"stepweave-{self.orchestrator_id}",
            on_message=self._route,
            # Heartbeats are subscribed per device once its status is accepted (``_follow``):
            # a client that never announced itself, or is not trusted, or floods, costs
            # us nothing, because the broker does not send us its messages at all.
            subscriptions=[
                (topics.all_status(), 1),
                (topics.all_results(self.orchestrator_id), 1),
            ],
            on_connect=self._connected,
            on_disconnect=self._disconnected,
            keepalive=self._keepalive,
            connect_timeout=self._connect_timeout,
            backoff=self._backoff,
        )
        # The task group first: the retained statuses that arrive as the link connects
        # already start pings in it.
        async with AsyncExitStack() as stack:
            self._tasks = TaskScope(await stack.enter_async_context(asyncio.TaskGroup()))
            self._stack = stack = stack.pop_all()
        try:
            self._link = await stack.enter_async_context(link)
        except BaseException:
            # Outside the group's block, so the error is not wrapped in an ExceptionGroup.
            await self._close()
            raise
        # Unwound in reverse: stop waiting jobs, give their cancel messages ``ack_timeout``
        # to reach the devices, cancel what is left, disconnect, leave the task group.
        stack.callback(setattr, self, "_link", None)
        stack.push_async_callback(self._tasks.stop, self._ack_timeout)
        stack.callback(self._shutdown)

    async def _close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def _shutdown(self) -> None:
        self._closed = True
        for timer in self._muted.values():
            timer.cancel()
        self._muted.clear()
        self._followed.clear()
        self._listening.clear()
        for job in self._jobs.values():
            if job.outcome is not None and not job.outcome.done():
                job.outcome.set_result(_Lost("the device executor was closed"))
        self._assigner.close()
        self._registry.close()
        if self._startup is not None:
            self._startup.cancel()  # a task of the group: its exit waits for it

    # -- public views -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    @property
    def devices(self) -> dict[str, DeviceInfo]:
        """Every device this executor knows of, alive or not, by id."""
        return {device.device_id: device.info() for device in self._registry}

    def announced_read_only(self, tool: str) -> bool:
        """Whether every alive device that offers ``tool`` announces it read-only (and one does).

        For an approval policy: a call that may land on any of them is read-only only if
        all of them say so. It is the devices' own claim (``Tool.read_only is True`` in
        their tools module), as far as ``trust`` lets them be used at all.
        """
        offering = [d for d in self._registry if d.alive and tool in d.capabilities]
        return bool(offering) and all(d.capabilities[tool].read_only for d in offering)

    def capabilities(self) -> dict[str, dict[str, Capability]]:
        """What each known device announces, by device id and tool name."""
        return {device.device_id: dict(device.capabilities) for device in self._registry}

    def fleet(self) -> dict[str, FleetTool]:
        """The tools the live devices offer, by name (see ``orchestrator.devices.catalog``)."""
        return fleet_tools(self.devices.values(), self.capabilities())

    async def settle(self, within: float = 2.0, *, quiet: float = 0.2) -> dict[str, DeviceInfo]:
        """Learn the fleet: wait for the retained statuses, then for those devices to answer.

        Retained statuses arrive in a burst right after we connect, and MQTT marks no end to
        it: the burst counts as over after ``quiet`` seconds without a status. Then every
        device announced online is waited for (it is pinged) until it answers, all within
        ``within`` seconds; one that does not (a ghost whose will never fired) stays not
        alive. Return every known device.
        """
        if self._link is None:
            raise RuntimeError("enter the DeviceExecutor first: `async with DeviceExecutor(...)`")
        await self._settled(within, quiet)
        return self.devices

    async def _settled(self, within: float, quiet: float = 0.2) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (idle := loop.time() - self._last_status) < quiet and loop.time() < deadline:
            # Every status sets the change event: wait for the next one or the quiet period.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(quiet - idle, deadline - loop.time())):
                    await self._change.wait()
        await self._known_devices_answered(deadline - loop.time())

    async def wait_for_change(self, within: float) -> bool:
        """Wait (at most ``within`` s) until a device comes, goes or changes; whether one did."""
        try:
            async with asyncio.timeout(max(within, 0.0)):
                await self._change.wait()
        except TimeoutError:
            return False
        return True

    async def _known_devices_answered(self, within: float) -> None:
        """Wait (at most ``within`` s) until every device announced online has answered us."""

        def waiting() -> bool:
            return any(not d.offline and not (d.alive and d.proven) for d in self._registry)

        try:
            async with asyncio.timeout(max(within, 0.0)):
                while waiting():
                    await self._change.wait()
        except TimeoutError:
            pass

    async def _before_first_assignment(self) -> None:
        # Every concurrent first call waits on the same task, so it is waited for once.
        if self._startup is None:
            # First the burst of retained statuses (a run started right after connecting would
            # otherwise see no device yet), then those devices' answers: both event-driven.
            self._startup = self._tasks.start(
                self._settled(self._startup_wait), name="stepweave-devices-startup"
            )
        if not self._startup.done():
            await asyncio.shield(self._startup)

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
        if self._startup is None or not self._startup.done():
            await self._before_first_assignment()
        tool = call.tool
        if isinstance(tool, RemoteTool):
            # Known only from the devices' announcements: check the call against them here,
            # as they are now (a device may have announced another version since).
            tool = self._version_for(tool, call)
            tool.validate_arguments(call.args)
        if key in self._jobs:
            raise RuntimeError(f"task key {key!r} is already being executed")
        budget = call.task.timeout or call.tool.timeout or self._default_deadline
        job = _Job(key, call, self._digest(tool), loop.time() + budget, careful=not self._may_move(call))
        self._jobs[key] = job
        try:
            while True:
                device = await self._assigner.acquire(job.placement)
                outcome = await traced_dispatch(self._attempt(job, device), call, device.device_id)
                if isinstance(outcome, Result):
                    return tool.validate_result(outcome.output)
                if isinstance(outcome, TaskFailure) and outcome.code in ("tool", "deadline"):
                    raise RemoteTaskError(
                        f"{outcome.error_type} on device {device.device_id!r}: {outcome.message}",
                        device_id=device.device_id,
                        remote_type=outcome.error_type,
                        retryable=outcome.retryable,
                    )
                reason = outcome.reason if isinstance(outcome, _Lost) else outcome.message
                if (
                    isinstance(outcome, _Lost)
                    and job.delivered
                    and not outcome.undelivered
                    and not self._may_move(call)
                ):
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

    def _version_for(self, tool: RemoteTool, call: ToolCall) -> RemoteTool:
        """The version of a device-only tool a new call is sent under.

        The version the run learned, while a live device that fits the target offers it;
        otherwise the one the fitting devices announce now (a device was upgraded mid-run),
        if the call's arguments fit it and its result schema is unchanged (later steps
        were checked against it). A call that does not fit is refused at once, naming the
        devices; a task already sent keeps its version (``Placement.digest``) when it moves.
        """
        name, target = call.task.tool, call.task.target
        if self._registry.has_candidates(name, self._digest(tool), target, ()):
            return tool
        offered: dict[str, tuple[Capability, list[str]]] = {}
        for device in sorted(self._registry, key=lambda d: d.device_id):
            if device.alive and device.fits(name, None, target):
                capability = device.capabilities[name]
                offered.setdefault(capability.digest, (capability, []))[1].append(device.device_id)
        if not offered:
            return tool  # nothing offers it now: the assigner waits for a device, then explains
        capability, devices = max(offered.values(), key=lambda version: len(version[1]))
        where = f"device{'s' if len(devices) > 1 else ''} {', '.join(devices)}"
        if capability.returns != tool.announced_returns:
            raise ToolArgumentError(
                f"task {call.task.id!r}: tool {name!r} changed on {where} during the run and its result "
                f"schema is not the one this run was checked against: run it again to use the new version"
            )
        newer = self._versions.get(capability.digest)
        if newer is None:
            newer = self._versions[capability.digest] = RemoteTool.from_capability(
                capability, read_only=lambda: self.announced_read_only(name)
            )
        try:
            newer.validate_arguments(call.args)
        except ToolArgumentError as exc:
            raise ToolArgumentError(
                f"task {call.task.id!r}: tool {name!r} changed on {where} during the run and the call "
                f"does not fit its new argument schema: {exc}"
            ) from None
        _log.info(
            "task %s: %s announce(s) another version of tool %s now; using it", call.task.id, where, name
        )
        return newer

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
                **trace_fields(),
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
                self._tasks.start(self._cancel_remote(device, job.key))
            raise
        finally:
            job.stop_ack_timer()
            job.stop_orphan_timer()
            job.probe = ""
            job.device = None
            device.jobs.discard(job.key)
            self._assigner.release(device)

    async def _send(self, job: _Job) -> None:
        """Publish the current attempt's request and arm its acknowledgement timer."""
        device, attempt, link = job.device, job.attempt, self._link
        if device is None or link is None:
            return
        if link.connected:
            # From the moment it is on the wire, the broker may have it, PUBACK or not: under
            # load the acknowledgement can sit for seconds in our own inbox, and a task that
            # may not run twice must not count as undelivered meanwhile.
            job.delivered = True
        sent = await link.publish(self.topics.tasks(device.device_id), job.payload, qos=1)
        if job.attempt != attempt:
            return
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
        if job.unacknowledged >= self._max_unacknowledged or job.probe:
            reason = f"did not acknowledge the request ({job.unacknowledged} sends) although it is alive"
            assert job.outcome is not None
            if job.probe:  # nor did it answer whether it received it
                job.outcome.set_result(_Lost(reason))
                return
            self._strike(device, f"left task {job.key} unacknowledged")
            if self._may_move(job.call):
                job.outcome.set_result(_Lost(reason))
            else:
                self._probe(job, device, attempt)
            return
        _log.info("task %s: no acknowledgement from %s yet; re-sending", job.key, device.device_id)
        self._ping(device.device_id)
        self._tasks.start(self._send(job))

    def _probe(self, job: _Job, device: _Device, attempt: int) -> None:
        """Ask ``device`` whether it ever received ``job``'s request, before giving up on it.

        A task that may not run twice must not move once the device may have started it.
        The ping goes out after every send of the request was acknowledged by the broker,
        and the broker delivers one client's messages to another in order, so an agent
        (protocol 1.1) that answers "never received" cannot receive it later either: then,
        and only then, the task moves. We trust that answer exactly as far as we trust the
        same device's results. No answer (an older agent, or a device that ignores pings)
        means it may have the request: the task fails as before, after one more wait.
        """
        job.probe = self._ping(device.device_id, keys=[job.key])
        job.ack_timer = asyncio.get_running_loop().call_later(
            2 * self._ack_timeout, self._ack_overdue, job, attempt
        )

    def _strike(self, device: _Device, reason: str) -> None:
        pause = self._registry.strike(device, reason)
        # Waiters skip a quarantined device: reconsider them when the quarantine ends.
        asyncio.get_running_loop().call_later(pause, self._changed)

    async def _cancel_remote(self, device: _Device, key: str) -> None:
        link = self._link
        if link is None:
            return
        message = Cancel(key=key, reason="the orchestrator stopped waiting (step timed out or run cancelled)")
        await link.publish(self.topics.control(device.device_id), encode(message), qos=1)

    def _ping(self, device_id: str, keys: Collection[str] = ()) -> str:
        """Ask ``device_id`` for a heartbeat now; return the ping's id (its echo proves it answers)."""
        self._ping_seq += 1
        ping_id = f"{self._ping_seq}"
        self._pings[ping_id] = (device_id, next(iter(keys), ""))
        while len(self._pings) > 4096:  # unanswered ones: keep the newest
            del self._pings[next(iter(self._pings))]
        if self._link is not None and self._link.connected:
            # A probe (keys) goes at QoS 1 like the request it follows: it relies on their
            # order. Plain pings stay QoS 0 (a lost one costs nothing; amqtt copes worse
            # with QoS 1 flows crossing both ways).
            message = encode(Ping(id=ping_id, keys=list(keys)))
            qos = 1 if keys else 0
            self._tasks.start(self._link.publish(self.topics.control(device_id), message, qos=qos))
        return ping_id

    def _resend(self, jobs: Collection[str]) -> None:
        for key in jobs:
            job = self._jobs.get(key)
            if job is not None and job.waiting and job.device is not None:
                job.unacknowledged = 0
                job.misses = 0
                self._tasks.start(self._send(job))

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

    def _device_alive(self, device: _Device) -> None:
        if not device.proven and device.device_id in self._listening:
            # An echo proves it answers: its window opens. (Until we listen to its
            # heartbeats, _follow pings it once we do.)
            self._ping(device.device_id)
        for key in device.jobs:  # back within the grace: keep waiting for its result
            job = self._jobs.get(key)
            if job is not None:
                job.stop_orphan_timer()
        self._changed()

    def _device_lost(self, device: _Device, reason: str, final: bool) -> None:
        grace = self._lost_grace
        if grace is None:
            grace = max(3 * self._registry.silence_limit(device), 5.0)
        for key in list(device.jobs):
            job = self._jobs.get(key)
            if job is None or job.outcome is None or job.outcome.done():
                continue
            if final or not job.delivered or self._may_move(job.call) or grace <= 0:
                job.outcome.set_result(_Lost(reason))
            elif job.orphan_timer is None:
                # It cannot move anyway: failing now gains nothing, and a device that only
                # looked silent (a flood delayed its heartbeats) may still deliver.
                _log.warning(
                    "task %s is not idempotent: waiting %gs for %s's result before giving up",
                    key,
                    grace,
                    device.device_id,
                )
                job.orphan_timer = asyncio.get_running_loop().call_later(
                    grace, self._orphan_expired, job, device, reason
                )
        self._changed()

    def _orphan_expired(self, job: _Job, device: _Device, reason: str) -> None:
        job.orphan_timer = None
        if job.device is device and job.outcome is not None and not job.outcome.done():
            job.outcome.set_result(_Lost(reason))

    # -- incoming messages ------------------------------------------------------------

    def _route(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload
        results = topic.startswith(self._results_prefix)
        device_id = topic[len(self._results_prefix) :] if results else self.topics.device_of(topic)
        if device_id is None or not self._within_budget(device_id):
            return
        if results:
            self._on_reply(device_id, payload)
            return
        if topic.endswith("/heartbeat"):
            self._on_heartbeat(device_id, payload)
        elif topic.endswith("/status"):
            self._on_status(device_id, payload, retained=message.retain)

    def _within_budget(self, device_id: str) -> bool:
        """Whether a message from ``device_id`` fits its budget; the excess is dropped unread."""
        now = time.monotonic()
        budget = self._budgets.get(device_id)
        if budget is None:
            if len(self._budgets) >= 4096:  # many ids (an anonymous broker): forget idle ones
                idle = [d for d, b in self._budgets.items() if now - b.last > self._rate_window]
                for stale in idle or list(self._budgets)[:1024]:
                    del self._budgets[stale]
            budget = self._budgets[device_id] = _Budget(self._burst, now)
        if budget.take(self._rate, self._burst, now):
            return True
        self._flooded_at = now
        if device_id in self._followed and device_id not in self._muted:
            self._mute(device_id)
        if now - budget.logged >= self._rate_window:
            _log.warning(
                "device %s sends more than %g messages a second: dropping the excess "
                "(%d dropped since the last warning)",
                device_id,
                self._rate,
                budget.dropped,
            )
            budget.logged = now
            budget.dropped = 0
        return False

    def _inbox_busy(self) -> str | None:
        """Why silence says nothing right now, or None.

        A flood delays every message behind it, in the broker and in our socket, where we
        cannot count them: while any device is over its budget (and for a rate window
        after), and while our own queue has a backlog, no device is declared lost for
        silence. A flood can thus delay the failover from a dead device (tasks still have
        their timeouts), but cannot fail a healthy one.
        """
        backlog = self._link.backlog if self._link is not None else 0
        if backlog > _BACKLOG:
            return f"{backlog} messages wait to be handled here"
        if time.monotonic() - self._flooded_at < self._rate_window:
            return "a device is flooding us"
        return None

    def _follow(self, device_id: str) -> None:
        """Subscribe to the heartbeats of a device we may use, then ask it for one."""
        if device_id in self._followed or self._link is None:
            return
        self._followed.add(device_id)
        link = self._link

        async def follow() -> None:
            if await link.subscribe(self.topics.heartbeat(device_id), 1):  # QoS 1: not dropped first
                if device_id in self._followed:
                    self._listening.add(device_id)
                self._ping(device_id)  # an echo sent before we listened would be lost

        self._tasks.start(follow())

    def _unfollow(self, device_id: str) -> None:
        if device_id in self._followed and self._link is not None:
            self._followed.discard(device_id)
            self._listening.discard(device_id)
            self._tasks.start(self._link.unsubscribe(self.topics.heartbeat(device_id)))

    def _mute(self, device_id: str) -> None:
        """A device floods its heartbeat topic: stop the broker sending it to us for a while."""
        _log.warning(
            "device %s floods its heartbeat topic: not listening to it for %gs", device_id, self._rate_window
        )
        self._unfollow(device_id)
        self._muted[device_id] = asyncio.get_running_loop().call_later(
            self._rate_window, self._unmute, device_id
        )

    def _unmute(self, device_id: str) -> None:
        self._muted.pop(device_id, None)
        if not self._closed and self._registry.get(device_id) is not None:
            self._follow(device_id)

    def _complain(self, device_id: str, message: str, *args: object) -> None:
        """Log a rejected message, at most ``_COMPLAINTS_PER_WINDOW`` per device and window."""
        budget = self._budgets.get(device_id)
        if budget is not None:
            now = time.monotonic()
            if now - budget.complaints_since >= self._rate_window:
                budget.complaints, budget.complaints_since = 0, now
            budget.complaints += 1
            if budget.complaints > _COMPLAINTS_PER_WINDOW:
                return
        _log.warning(message, *args)

    def _on_status(self, device_id: str, payload: bytes | bytearray, *, retained: bool) -> None:
        if not payload:
            self._registry.forget(device_id)  # its retained status was cleared: it left the fleet
            if self._registry.get(device_id) is None:
                self._unfollow(device_id)
            return
        status = self._from_device(device_id, payload, Status, "status", "the status")
        if status is None:
            return
        self._last_status = asyncio.get_running_loop().time()
        refusal = self.trust.refusal(device_id, status.labels)
        if refusal is not None:
            if device_id not in self._ignored:
                self._ignored.add(device_id)
                _log.warning("ignoring device %s: %s", device_id, refusal)
            return
        known = self._registry.get(device_id)
        self._registry.on_status(status, retained=retained)
        device = self._registry.get(device_id)
        if device is not None and device_id not in self._muted:
            self._follow(device_id)
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
            self._complain(device_id, "rejected %s of device %s: %s", one, device_id, exc)
            return None
        if message.device_id != device_id:
            self._complain(
                device_id,
                "dropped a %s claiming device %r on the topic of %r",
                what,
                message.device_id,
                device_id,
            )
            return None
        return message

    def _on_heartbeat(self, device_id: str, payload: bytes | bytearray) -> None:
        beat = self._from_device(device_id, payload, Heartbeat, "heartbeat", "a heartbeat")
        if beat is None:
            return
        device = self._registry.on_heartbeat(beat)
        if device is None:
            return
        if beat.ping:
            self._on_echo(device, beat)
        if not device.jobs:
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
                self._tasks.start(self._send(job))

    def _on_echo(self, device: _Device, beat: Heartbeat) -> None:
        """A heartbeat answering one of our pings: the device answers; maybe a probe's verdict."""
        asked = self._pings.pop(beat.ping, None)
        if asked is None or asked[0] != device.device_id:
            return
        if self._registry.prove(device):
            self._changed()
        key = asked[1]
        job = self._jobs.get(key) if key else None
        if job is None or job.device is not device or job.probe != beat.ping or not job.waiting:
            return
        job.stop_ack_timer()
        assert job.outcome is not None
        if key in beat.seen:
            job.outcome.set_result(
                _Lost("received the request but never acknowledged it (it may have run there)")
            )
        else:
            _log.warning("task %s: %s says it never received the request; moving it", key, device.device_id)
            job.outcome.set_result(_Lost("never received the request (it said so)", undelivered=True))

    def _on_reply(self, device_id: str, payload: bytes | bytearray) -> None:
        try:
            reply: Accepted | Progress | Result | TaskFailure = decode(
                payload, ReplyMessage, max_payload=self._max_payload
            )
        except ProtocolError as exc:
            self._complain(device_id, "rejected a message from device %s: %s", device_id, exc)
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
        # A well-formed message on its own topic: proof of life, whatever it answers.
        self._registry.heard_from(device_id)
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
        if self._registry.prove(device):
            self._changed()
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
