"""``DeviceAgent``: the device side. It offers tools over MQTT and runs what it is sent.

```python
async with DeviceAgent("dev-1", tools=[ping, disk_free], broker="mqtt://broker:1883",
                       labels={"site": "lab"}, max_concurrency=4) as agent:
    await agent.serve_forever()
```

It announces its tools in a retained status message (the last will marks it offline),
sends heartbeats, and runs each request with the same argument and result validation as
local execution (``LocalExecutor``), within the request's deadline and its own concurrency
limit. A request it has seen before, identified by its task key, is never run twice: a
running one is acknowledged again, a finished one gets its cached outcome re-sent. The
same holds across keys for one task of one run (run id, task id): an orchestrator resumed
from its journal re-dispatches an in-flight task with the attempt incremented, and the
agent answers it from the work it is doing or has done. Results computed while the
broker is unreachable are queued and sent after the reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Literal

import aiomqtt

from tools import Tool, ToolContext, ToolRegistry
from tools.threads import use_runner

from ..errors import ErrorKind, TaskTimeout
from ..executors import LocalExecutor, ToolCall
from ..graph import Task
from ..result import is_retryable
from ..telemetry.devices import traced_device_call
from .errors import BrokerConnectionError
from .link import Link
from .protocol import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_NAMESPACE,
    PROTOCOL_REVISION,
    Accepted,
    Cancel,
    Capability,
    ControlMessage,
    Heartbeat,
    Ping,
    Progress,
    ProtocolError,
    Reply,
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
from .settings import BrokerSettings
from .signals import until_signalled
from .tasks import TaskScope

__all__ = ["DeviceAgent", "current_device", "parse_labels", "run_agent"]

_log = logging.getLogger("stepweave.devices.agent")

#: A result ready within this time is acknowledged by the result alone (one message, not two).
_ACCEPT_GRACE = 0.02

Outcome = Result | TaskFailure

_current_device: contextvars.ContextVar[str | None] = contextvars.ContextVar("stepweave_device", default=None)


def current_device() -> str | None:
    """The id of the device agent running the calling tool, or ``None`` outside an agent.

    A tool that reports where it ran (a fleet health check, say) reads it; it is set for
    async tools and for sync tools in their worker threads alike.
    """
    return _current_device.get()


class _Job:
    """One task key held by the agent: queued or running."""

    __slots__ = ("accept_timer", "aliases", "cancel_reason", "deadline", "progress", "request", "task")

    def __init__(self, request: TaskRequest, deadline: float) -> None:
        self.request = request
        self.deadline = deadline
        self.task: asyncio.Task[None] | None = None
        self.accept_timer: asyncio.TimerHandle | None = None
        #: The last progress message being sent: the result must not overtake it.
        self.progress: asyncio.Task[None] | None = None
        self.cancel_reason: str | None = None
        #: Later keys of the same run and task that were attached to this job.
        self.aliases: list[str] = []


class DeviceAgent:
    """Serves ``tools`` to orchestrators as device ``device_id``. Enter it to go online.

    Args:
        device_id: this device's name: one topic level, and its broker user name under
            the documented ACL.
        tools: ``@tool`` functions or a ``ToolRegistry``: what this device advertises.
        broker: ``mqtt://`` / ``mqtts://`` URL or ``BrokerSettings``; ``None`` reads
            ``$STEPWEAVE_BROKER``.
        labels: free-form ``key: value`` pairs orchestrators select devices by.
        max_concurrency: most tasks running at once; more are queued (up to four times
            as many), beyond that requests are rejected so the orchestrator picks another.
        heartbeat_interval: seconds between heartbeats; orchestrators declare the device
            lost after three missed ones.
        keepalive: MQTT keepalive; the broker fires the last will after 1.5 times it.
        heartbeat_qos: 0 (the default) or 1. Orchestrators subscribe at QoS 1, so with 1 a
            broker queues heartbeats for a slow orchestrator rather than dropping them first;
            0 because amqtt (the development broker) drops connections when QoS 1 flows cross
            (measured: one broker-restart test run in ten failed). Orchestrators no longer
            rely on either: silence is not judged while their inbox is backed up.
        allow_insecure: serve tools that are not read-only through a broker beyond
            loopback without logging in (no user name, no client certificate). Refused
            otherwise: anyone who can reach such a broker could run them.
    """

    def __init__(
        self,
        device_id: str,
        *,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]],
        broker: str | BrokerSettings | None = None,
        labels: Mapping[str, str] | None = None,
        max_concurrency: int = 4,
        namespace: str = DEFAULT_NAMESPACE,
        heartbeat_interval: float = 2.0,
        keepalive: int = 10,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        cache_size: int = 4096,
        connect_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        max_threads: int = 32,
        heartbeat_qos: int = 0,
        allow_insecure: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval must be > 0, got {heartbeat_interval}")
        self.device_id = validate_device_id(device_id)
        self.tools = ToolRegistry.coerce(tools)
        self.settings = BrokerSettings.resolve(broker)
        _check_transport(self.device_id, self.settings, self.tools, allow_insecure=allow_insecure)
        self.labels = dict(labels or {})
        self.max_concurrency = max_concurrency
        self.heartbeat_interval = heartbeat_interval
        if heartbeat_qos not in (0, 1):
            raise ValueError(f"heartbeat_qos must be 0 or 1, got {heartbeat_qos}")
        self._heartbeat_qos = heartbeat_qos
        self.topics = Topics(namespace)
        self._keepalive = keepalive
        self._max_payload = max_payload
        self._cache_size = cache_size
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._local = LocalExecutor(max_threads=max_threads)
        #: Random per agent instance: orchestrators see a restart as a new session.
        self.session = secrets.token_hex(6)
        self._jobs: dict[str, _Job] = {}
        self._outcomes: OrderedDict[str, Outcome] = OrderedDict()
        #: Keys of every request received (bounded): what a ping asking "did you get it?" checks.
        self._seen: OrderedDict[str, None] = OrderedDict()
        # By (run id, task id): the job doing it, the keys attached to that job, and the
        # results of finished ones (bounded like _outcomes).
        self._by_task: dict[tuple[str, str], _Job] = {}
        self._aliases: dict[str, _Job] = {}
        self._task_results: OrderedDict[tuple[str, str], Result] = OrderedDict()
        self._slots = asyncio.Semaphore(max_concurrency)
        self._link: Link | None = None
        #: Jobs, sends and the heartbeat loop, in the task group of ``_stack``.
        self._tasks = TaskScope(None)
        #: What ``__aenter__`` opened, closed in reverse by ``aclose``.
        self._stack: AsyncExitStack | None = None
        self._seq = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        # The local executor reads only the tool, arguments and context of a call; the task
        # itself stays with the orchestrator, so a placeholder per tool stands in for it.
        self._placeholders = {t.name: Task(id="remote", tool=t.name) for t in self.tools}
        self._capabilities = [
            Capability(
                name=t.name,
                description=t.description,
                parameters=t.parameters_schema,
                returns=t.return_schema,
                digest=schema_digest(t.parameters_schema),
                # Only a constant True: a predicate depends on arguments the status cannot know.
                read_only=t.read_only is True,
            )
            for t in self.tools
        ]
        # Fail now, not on the wire, if the announcement cannot be sent.
        try:
            encode(self._status("online"), max_payload=max_payload)
        except ProtocolError as exc:
            raise ValueError(f"device {device_id!r}: its status message cannot be sent: {exc}") from None

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> DeviceAgent:
        if self._link is not None:
            raise RuntimeError("a DeviceAgent can be entered only once; create a new one")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        topics = self.topics
        will = aiomqtt.Will(
            topics.status(self.device_id), encode(self._status("offline", "will")), qos=1, retain=True
        )
        link = Link(
            self.settings,
            client_id=f"stepweave-agent-{self.device_id}-{self.session}",
            on_message=self._route,
            subscriptions=[
                (topics.tasks(self.device_id), 1),
                (topics.control(self.device_id), 1),
                (topics.status(self.device_id), 1),
            ],
            on_connect=self._announce,
            will=will,
            keepalive=self._keepalive,
            connect_timeout=self._connect_timeout,
            backoff=self._backoff,
        )
        self._link = link  # before connecting: its on_connect announces through it
        # Unwound in reverse: stop the jobs and the heartbeat, say "offline", disconnect,
        # leave the task group, release the tool threads. The group comes first: requests
        # that arrive as the link connects already start jobs in it.
        async with AsyncExitStack() as stack:
            stack.callback(self._local.close)
            self._tasks = TaskScope(await stack.enter_async_context(asyncio.TaskGroup()))
            self._stack = stack = stack.pop_all()
        try:
            await stack.enter_async_context(link)
        except BaseException:
            # Outside the group's block, so the error is not wrapped in an ExceptionGroup.
            self._stack = None
            await stack.aclose()
            raise
        stack.push_async_callback(self._go_offline)
        stack.push_async_callback(self._tasks.stop)
        self._tasks.start(self._heartbeats(), name=f"stepweave-agent-{self.device_id}-heartbeat")
        _log.info(
            "device %s online at %s with tools: %s",
            self.device_id,
            self.settings.url,
            ", ".join(self.tools.names),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Go offline: stop running tasks (their orchestrators fail them over) and disconnect."""
        if self._stopping:
            return
        self._stopping = True
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _go_offline(self) -> None:
        link = self._link
        if link is not None and link.connected:
            # A clean disconnect suppresses the will, so say "offline" ourselves.
            await link.publish(
                self.topics.status(self.device_id),
                encode(self._status("offline", "shutdown")),
                qos=1,
                retain=True,
            )

    async def serve_forever(self) -> None:
        """Serve until cancelled (the connection heals itself; only a refusal ends it)."""
        if self._link is None:
            raise RuntimeError("enter the agent first: `async with DeviceAgent(...) as agent`")
        while True:
            await self._link.wait_connected()  # raises BrokerConnectionError once it gives up
            await asyncio.Event().wait()

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.connected

    @property
    def running(self) -> int:
        """Tasks held right now, running or queued."""
        return len(self._jobs)

    # -- announcing -------------------------------------------------------------------

    def _status(self, state: str, reason: Literal["", "shutdown", "will"] = "") -> Status:
        return Status(
            device_id=self.device_id,
            session=self.session,
            state="online" if state == "online" else "offline",
            capabilities=self._capabilities,
            labels=self.labels,
            max_concurrency=self.max_concurrency,
            load=len(self._jobs),
            heartbeat_interval=self.heartbeat_interval,
            reason=reason,
            sent_at=time.time(),
            revision=PROTOCOL_REVISION,
        )

    async def _announce(self) -> None:
        assert self._link is not None
        await self._link.publish(
            self.topics.status(self.device_id), encode(self._status("online")), qos=1, retain=True
        )
        await self._beat()

    async def _beat(self, ping: Ping | None = None) -> None:
        assert self._link is not None
        self._seq += 1
        beat = Heartbeat(
            device_id=self.device_id,
            session=self.session,
            load=len(self._jobs),
            running=[*self._jobs, *self._aliases],
            seq=self._seq,
            sent_at=time.time(),
            ping=ping.id if ping is not None else "",
            seen=[key for key in ping.keys if key in self._seen] if ping is not None else [],
        )
        await self._link.publish(self.topics.heartbeat(self.device_id), encode(beat), qos=self._heartbeat_qos)

    async def _heartbeats(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_interval)
            # Not awaited: a QoS 1 acknowledgement that is slow to come (a busy or
            # reconnecting broker) must not hold back the next beat.
            self._tasks.start(self._beat())

    # -- routing ----------------------------------------------------------------------

    def _route(self, message: aiomqtt.Message) -> None:
        topic = message.topic.value
        payload = message.payload
        topics = self.topics
        if topic == topics.tasks(self.device_id):
            self._on_request(payload)
        elif topic == topics.control(self.device_id):
            self._on_control(payload)
        elif topic == topics.status(self.device_id):
            self._on_own_status(payload, message.retain)

    def _on_own_status(self, payload: bytes | bytearray, retained: bool) -> None:
        try:
            status: Status = decode(payload, Status, max_payload=self._max_payload)
        except ProtocolError:
            return
        if status.session == self.session:
            if status.state == "offline" and not self._stopping:
                # Our own will, delivered late (the broker noticed a dead connection after
                # we had reconnected): say we are online again.
                _log.warning("device %s: a stale last will marked us offline; re-announcing", self.device_id)
                self._tasks.start(self._announce())
        elif not retained and status.state == "online":
            _log.warning(
                "device %s: another agent (session %s) uses the same device id",
                self.device_id,
                status.session,
            )

    def _on_control(self, payload: bytes | bytearray) -> None:
        try:
            message: Cancel | Any = decode(payload, ControlMessage, max_payload=self._max_payload)
        except ProtocolError as exc:
            _log.warning("device %s: rejected a control message: %s", self.device_id, exc)
            return
        if isinstance(message, Cancel):
            job = self._jobs.get(message.key) or self._aliases.get(message.key)
            if job is not None and job.task is not None and not job.task.done():
                _log.info("device %s: cancelling %s (%s)", self.device_id, message.key, message.reason)
                job.cancel_reason = message.reason or "cancelled by the orchestrator"
                job.task.cancel()
        else:  # Ping: an orchestrator wants proof of life now
            self._tasks.start(self._beat(message))

    def _on_request(self, payload: bytes | bytearray) -> None:
        try:
            request: TaskRequest = decode(payload, TaskRequest, max_payload=self._max_payload)
            validate_device_id(request.orchestrator)
        except (ProtocolError, ValueError) as exc:
            _log.warning("device %s: rejected a task request: %s", self.device_id, exc)
            return
        key = request.key
        self._seen[key] = None
        self._seen.move_to_end(key)
        if len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
        outcome = self._outcomes.get(key)
        if outcome is not None:
            _log.info("device %s: %s seen before; re-sending its outcome", self.device_id, key)
            self._outcomes.move_to_end(key)
            self._tasks.start(self._send(request, outcome, reliable=True))
            return
        job = self._jobs.get(key)
        if job is not None:
            # A re-send (lost acknowledgement, or a failover back to us): same work, newer
            # correlation, so the result goes to the attempt now waiting for it.
            job.request = request
            self._tasks.start(self._send(request, None, reliable=False))
            return
        if self._same_task(request):
            return
        problem = self._refusal(request)
        if problem is not None:
            error_type, message, retryable = problem
            failure = TaskFailure(
                **_correlation(request, self.device_id),
                code="rejected",
                error_type=error_type,
                message=message,
                retryable=retryable,
            )
            self._tasks.start(self._send(request, failure, reliable=True))
            return
        loop = asyncio.get_running_loop()
        job = self._jobs[key] = _Job(request, loop.time() + request.timeout)
        self._by_task[(request.run_id, request.task_id)] = job
        job.task = self._tasks.start(self._serve(job), name=f"stepweave-agent-{self.device_id}:{key}")
        grace = min(_ACCEPT_GRACE, request.ack_timeout / 4)
        job.accept_timer = loop.call_later(grace, self._accept, job)

    def _same_task(self, request: TaskRequest) -> bool:
        """Answer a new key for a task of a run this agent did or is doing; True if so."""
        task = (request.run_id, request.task_id)
        done = self._task_results.get(task)
        if done is not None:
            _log.info(
                "device %s: %s already succeeded here; re-sending its result", self.device_id, request.key
            )
            self._task_results.move_to_end(task)
            self._tasks.start(self._send(request, done, reliable=True))
            return True
        job = self._by_task.get(task)
        if job is None or (job.task is not None and job.task.done()):
            return False
        _log.info("device %s: %s is still running here; attaching %s", self.device_id, task, request.key)
        job.request = request
        job.aliases.append(request.key)
        self._aliases[request.key] = job
        self._tasks.start(self._send(request, None, reliable=False))
        return True

    def _refusal(self, request: TaskRequest) -> tuple[str, str, bool] | None:
        if request.tool not in self.tools:
            return (
                "ToolNotFoundError",
                f"device {self.device_id!r}: {self.tools.unknown_message(request.tool)}",
                False,
            )
        if len(self._jobs) >= 4 * self.max_concurrency:
            return (
                ErrorKind.DEVICE_BUSY,
                f"device {self.device_id!r} holds {len(self._jobs)} tasks; it is full",
                True,
            )
        if self._stopping:
            return ErrorKind.DEVICE_STOPPING, f"device {self.device_id!r} is shutting down", True
        return None

    def _accept(self, job: _Job) -> None:
        job.accept_timer = None
        if job.task is not None and not job.task.done():
            self._tasks.start(self._send(job.request, None, reliable=False))

    # -- running ----------------------------------------------------------------------

    async def _execute(self, job: _Job) -> Outcome:
        request = job.request
        tool = self.tools.get(request.tool)
        correlation = _correlation(request, self.device_id)
        _current_device.set(self.device_id)  # this job's own context (its asyncio task)
        use_runner(self._local.run_sync)  # blocking work the tool starts: the agent's threads
        started = time.monotonic()
        scope = asyncio.timeout_at(job.deadline)
        try:
            async with scope, self._slots:
                context = self._context(job, tool) if tool.takes_context else None
                placeholder = self._placeholders[tool.name]
                call = ToolCall(request.run_id, placeholder, tool, request.args, request.attempt, context)
                output = await self._local.execute(call)
        except TimeoutError as exc:
            if not scope.expired():
                return _tool_failure(correlation, exc)
            detail = (
                "" if tool.is_async else " (its worker thread cannot be stopped and may still be running)"
            )
            return TaskFailure(
                **correlation,
                code="deadline",
                error_type=TaskTimeout.__name__,
                message=f"ran past its deadline of {request.timeout:g}s on device {self.device_id!r}{detail}",
                retryable=True,
            )
        except asyncio.CancelledError:
            if job.cancel_reason is None or self._stopping:
                raise
            # Cancelled by the orchestrator: the tool saw CancelledError; report and cache it.
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            return TaskFailure(
                **correlation,
                code="cancelled",
                error_type=ErrorKind.CANCELLED,
                message=f"cancelled on device {self.device_id!r}: {job.cancel_reason}",
                retryable=False,
            )
        except Exception as exc:
            return _tool_failure(correlation, exc)
        return Result(**correlation, output=output, duration=time.monotonic() - started)

    async def _serve(self, job: _Job) -> None:
        """Run one job, remember its outcome, and send it (after a reconnect, if need be)."""
        key = job.request.key
        try:
            outcome = await traced_device_call(self._execute(job), job.request, self.device_id)
        finally:  # cancelled only when shutting down: orchestrators fail the task over
            if job.accept_timer is not None:
                job.accept_timer.cancel()
                job.accept_timer = None
            self._jobs.pop(key, None)
            for alias in job.aliases:
                self._aliases.pop(alias, None)
            task = (job.request.run_id, job.request.task_id)
            if self._by_task.get(task) is job:
                del self._by_task[task]
        self._outcomes[key] = outcome
        if len(self._outcomes) > self._cache_size:
            self._outcomes.popitem(last=False)
        if isinstance(outcome, Result):  # only a success stands for every later attempt
            self._task_results[task] = outcome
            if len(self._task_results) > self._cache_size:
                self._task_results.popitem(last=False)
        if job.progress is not None:
            await asyncio.wait([job.progress])
        await self._send(job.request, outcome, reliable=True)

    def _context(self, job: _Job, tool: Tool) -> ToolContext:
        request = job.request

        def send(progress: Progress) -> None:
            job.progress = self._tasks.start(self._send(job.request, progress, reliable=False))

        def report(fraction: float | None, message: str) -> None:
            progress = Progress(
                **_correlation(job.request, self.device_id), fraction=fraction, message=message
            )
            if threading.get_ident() == self._loop_thread:
                send(progress)
            elif self._loop is not None:  # a sync tool in its worker thread
                self._loop.call_soon_threadsafe(send, progress)

        logger = logging.LoggerAdapter(
            logging.getLogger(f"stepweave.tools.{tool.name}"),
            {"run_id": request.run_id, "task_id": request.task_id, "device_id": self.device_id},
        )
        return ToolContext(request.run_id, request.task_id, request.attempt, report, logger)

    # -- sending ----------------------------------------------------------------------

    async def _send(self, request: TaskRequest, reply: Reply | None, *, reliable: bool) -> None:
        """Send ``reply`` (``None``: ``Accepted``) stamped with ``request``'s correlation.

        The stamp is the newest request's for the key, so a re-sent outcome matches the
        attempt the orchestrator is waiting on now.
        """
        assert self._link is not None
        correlation = _correlation(request, self.device_id)
        if reply is None:
            message: Reply = Accepted(**correlation)
        elif (reply.key, reply.attempt, reply.nonce) == (request.key, request.attempt, request.nonce):
            message = reply
        else:
            message = reply.model_copy(update=correlation)
        try:
            payload = encode(message, max_payload=self._max_payload)
        except ProtocolError as exc:
            payload = encode(
                TaskFailure(
                    **correlation,
                    code="tool",
                    error_type=ErrorKind.RESULT_NOT_SENDABLE,
                    message=f"device {self.device_id!r} cannot send the result: {exc}",
                    retryable=False,
                )
            )
        topic = self.topics.results(request.orchestrator, self.device_id)
        qos = 0 if isinstance(message, Progress) else 1
        with contextlib.suppress(BrokerConnectionError):  # closing: orchestrators fail our tasks over
            await self._link.publish(topic, payload, qos=qos, reliable=reliable)


def _check_transport(
    device_id: str, settings: BrokerSettings, tools: ToolRegistry, *, allow_insecure: bool
) -> None:
    """Refuse to offer side effects to anyone on a network broker; warn about clear-text passwords.

    An agent that does not log in can only work with a broker that lets anyone in, and
    then anyone who reaches the broker can send it tasks. On loopback that is the local
    development setup (``--local-agents``); beyond it, it is remote code execution.
    """
    if settings.loopback:
        return
    writers = sorted(t.name for t in tools if t.read_only is not True)
    if not settings.authenticated and writers:
        if not allow_insecure:
            raise ValueError(
                f"device {device_id!r}: refusing to offer {', '.join(writers[:5])}"
                f"{' …' if len(writers) > 5 else ''} (not read-only) through {settings.url} without "
                "logging in: a broker that lets this agent in anonymously lets anyone send it tasks. "
                "Put a user name and password in the broker URL (or STEPWEAVE_BROKER_USERNAME/"
                "_PASSWORD), or pass --insecure-broker (allow_insecure=True) on a trusted network"
            )
        _log.warning(
            "device %s: offering %s through %s without logging in (--insecure-broker)",
            device_id,
            ", ".join(writers),
            settings.url,
        )
    elif settings.authenticated and not settings.tls:
        _log.warning(
            "device %s: the broker %s is not loopback and not TLS (mqtts://): the password "
            "and every task travel in clear text",
            device_id,
            settings.url,
        )


def _tool_failure(correlation: dict[str, Any], exc: Exception) -> TaskFailure:
    return TaskFailure(
        **correlation,
        code="tool",
        error_type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        retryable=is_retryable(exc),
    )


def _correlation(request: TaskRequest, device_id: str) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "run_id": request.run_id,
        "task_id": request.task_id,
        "key": request.key,
        "attempt": request.attempt,
        "nonce": request.nonce,
    }


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``["site=lab", "rack=3"]`` → ``{"site": "lab", "rack": "3"}`` (for ``--label k=v``)."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"label {item!r}: expected key=value")
        labels[key.strip()] = value.strip()
    return labels


async def run_agent(
    device_id: str,
    *,
    tools: ToolRegistry | Iterable[Tool | Callable[..., Any]],
    broker: str | BrokerSettings | None = None,
    labels: Mapping[str, str] | None = None,
    max_concurrency: int = 4,
    namespace: str = DEFAULT_NAMESPACE,
    heartbeat_interval: float = 2.0,
    keepalive: int = 10,
    allow_insecure: bool = False,
    on_ready: Callable[[DeviceAgent], None] | None = None,
    handle_signals: bool = True,
) -> None:
    """Run an agent until cancelled or sent SIGTERM/SIGINT (``stepweave agent`` calls this).

    ``on_ready`` is called once the agent is online. Signals end it gracefully: the
    agent publishes "offline" so orchestrators fail its tasks over at once.
    """
    async with DeviceAgent(
        device_id,
        tools=tools,
        broker=broker,
        labels=labels,
        max_concurrency=max_concurrency,
        namespace=namespace,
        heartbeat_interval=heartbeat_interval,
        keepalive=keepalive,
        allow_insecure=allow_insecure,
    ) as agent:
        if on_ready is not None:
            on_ready(agent)
        await until_signalled(agent.serve_forever(), handle_signals=handle_signals)
