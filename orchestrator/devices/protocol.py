"""The wire protocol between orchestrators and device agents: versioned JSON over MQTT.

Every message is a pydantic model with ``v`` (the protocol version) and ``type``. The
protocol is designed for MQTT 3.1.1 semantics, because the development broker (amqtt)
speaks nothing newer, loses offline-queued messages and never fires a hung client's will:
so liveness comes from our own heartbeats, delivery from application-level
acknowledgements, and size limits from our own checks, never from broker features.

Topics, under a namespace (default ``stepweave``)::

    {ns}/devices/{id}/status        Status, retained; the last will is an offline Status
    {ns}/devices/{id}/heartbeat     Heartbeat (QoS 0, or 1), every ``heartbeat_interval`` seconds
    {ns}/devices/{id}/tasks         TaskRequest, orchestrator → device
    {ns}/devices/{id}/control       Cancel and Ping, orchestrator → device
    {ns}/orchestrators/{oid}/results/{id}
                                    Accepted, Progress, Result, TaskFailure, device → orchestrator

The device id is the last level of the results topic, so a broker ACL can confine each
device to publishing under its own name (``pattern write …/results/%u``): a result's
topic then proves its sender, which no field inside a payload can.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_NAMESPACE",
    "PROTOCOL_REVISION",
    "PROTOCOL_VERSION",
    "Accepted",
    "Cancel",
    "Capability",
    "ControlMessage",
    "Heartbeat",
    "Ping",
    "Progress",
    "ProtocolError",
    "Reply",
    "ReplyMessage",
    "Result",
    "Status",
    "TaskFailure",
    "TaskRequest",
    "Topics",
    "decode",
    "encode",
    "schema_digest",
    "validate_device_id",
]

PROTOCOL_VERSION: Literal[1] = 1
#: Features added within version 1 as optional fields, which older peers ignore:
#: ``Capability.read_only``, ``Ping.id``/``keys`` and the ``Heartbeat.ping``/``seen`` echo
#: (1.1); ``Status.revision`` (1.2), so ``stepweave devices`` can show what each agent speaks.
PROTOCOL_REVISION = "1.2"
DEFAULT_NAMESPACE = "stepweave"
#: Largest payload either side sends or accepts (1 MiB); amqtt enforces no limit at all.
DEFAULT_MAX_PAYLOAD = 1 << 20

_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class ProtocolError(ValueError):
    """A payload was rejected: too large, not JSON, an unknown version or the wrong shape."""


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is one safe topic level, else raise ``ValueError``."""
    if not _DEVICE_ID.match(device_id):
        raise ValueError(
            f"invalid device id {device_id!r}: use 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (it becomes an MQTT topic level and a broker user name)"
        )
    return device_id


def schema_digest(schema: Any) -> str:
    """A short stable digest of a JSON Schema, to tell two versions of a tool apart."""
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


#: W3C ``traceparent`` version 00: trace id and parent span id, neither all zeros.
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
#: W3C ``tracestate``: at most 32 list members of printable ASCII; 512 characters is our cap.
_TRACESTATE = re.compile(r"[\x20-\x7e]{0,512}")


def _traceparent(value: Any) -> str:
    return value if isinstance(value, str) and _TRACEPARENT.fullmatch(value) else ""


def _tracestate(value: Any) -> str:
    return value if isinstance(value, str) and _TRACESTATE.fullmatch(value) and value.count(",") < 32 else ""


class _Message(BaseModel):
    # ``extra="ignore"``: a newer agent of the same version may add optional fields.
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = PROTOCOL_VERSION


class Capability(BaseModel):
    """A tool a device offers: its name and the JSON Schemas of its arguments and result."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    description: str = ""
    parameters: dict[str, Any]
    returns: dict[str, Any] | None = None
    #: ``schema_digest(parameters)``: equal digests mean the same argument schema.
    digest: str
    #: The device's tool declares itself free of side effects for every call (its
    #: ``Tool.read_only`` is ``True``; a predicate over the arguments announces ``False``).
    #: Added in protocol 1.1: older agents omit it, which reads as ``False``.
    read_only: bool = False


class Status(_Message):
    """What a device is and offers. Retained, so a new orchestrator learns it at once."""

    type: Literal["status"] = "status"
    device_id: str
    #: Random per agent process: a new session means the old one's tasks are gone.
    session: str
    state: Literal["online", "offline"]
    capabilities: list[Capability] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    max_concurrency: int = Field(default=1, ge=1)
    load: int = Field(default=0, ge=0)
    heartbeat_interval: float = Field(default=2.0, gt=0)
    #: Why a device is offline: ``shutdown`` (it said so itself) or ``will`` (the broker
    #: published its last will: its connection died, or the broker itself is stopping).
    reason: Literal["", "shutdown", "will"] = ""
    sent_at: float = 0.0
    #: The protocol revision the agent speaks (1.2 and later; older agents omit it).
    revision: str = ""


class Heartbeat(_Message):
    """Proof of life, with the keys of every task the device holds (running or queued)."""

    type: Literal["heartbeat"] = "heartbeat"
    device_id: str
    session: str
    load: int = Field(default=0, ge=0)
    running: list[str] = Field(default_factory=list)
    seq: int = 0
    sent_at: float = 0.0
    #: The ``Ping.id`` this heartbeat answers ("" for a periodic one). Protocol 1.1; an
    #: older agent never echoes, so an orchestrator cannot tell it from one that ignores pings.
    ping: str = ""
    #: Of the ``Ping.keys`` asked about, the task keys whose request this agent has received
    #: (running, queued, finished or refused). Protocol 1.1.
    seen: list[str] = Field(default_factory=list)


class TaskRequest(_Message):
    """Run ``tool`` with ``args``. ``key`` names the task across re-sends and failovers.

    ``timeout`` is the budget in seconds from receipt: a relative deadline, because the
    clocks of a device and an orchestrator need not agree.
    """

    type: Literal["request"] = "request"
    orchestrator: str
    run_id: str
    task_id: str
    key: str
    attempt: int = Field(ge=1)
    nonce: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(gt=0)
    #: Send ``Accepted`` well within this many seconds, unless the result is ready first.
    ack_timeout: float = Field(default=1.0, gt=0)
    #: The W3C trace context of the orchestrator's dispatch span, so the agent's span joins
    #: its trace (optional; older agents ignore it). A malformed or oversized value reads
    #: as "" instead of rejecting the request: tracing never fails a task.
    traceparent: Annotated[str, BeforeValidator(_traceparent)] = ""
    tracestate: Annotated[str, BeforeValidator(_tracestate)] = ""


class Cancel(_Message):
    """Stop the task ``key``: the orchestrator no longer wants its result."""

    type: Literal["cancel"] = "cancel"
    key: str
    reason: str = ""


class Ping(_Message):
    """Ask a device for an immediate heartbeat (sent when its status came from the retained store).

    Since protocol 1.1 the heartbeat echoes ``id`` and says which of ``keys`` the device has
    received a request for: an orchestrator that pings after a request reached the broker
    learns whether the device ever got it (messages from one client to another keep their order).
    """

    type: Literal["ping"] = "ping"
    id: str = ""
    keys: list[str] = Field(default_factory=list, max_length=64)


class Reply(_Message):
    """Fields every device → orchestrator message carries, to correlate it with a request."""

    device_id: str
    run_id: str
    task_id: str
    key: str
    attempt: int
    nonce: str


class Accepted(Reply):
    """The device holds the task (running or queued). A ``Result`` implies it too."""

    type: Literal["accepted"] = "accepted"


class Progress(Reply):
    """Progress reported by the tool (QoS 0: losing one is harmless)."""

    type: Literal["progress"] = "progress"
    fraction: float | None = Field(default=None, ge=0, le=1)
    message: str = ""


class Result(Reply):
    """The tool's validated return value, as JSON."""

    type: Literal["result"] = "result"
    output: Any = None
    duration: float = 0.0


class TaskFailure(Reply):
    """The task did not produce a result on this device.

    ``code``: ``tool`` (the tool raised), ``deadline`` (its budget ran out), ``rejected``
    (this device cannot take it: unknown tool, full, expired; try another device),
    ``cancelled`` (stopped by a ``Cancel`` or by the agent shutting down).
    """

    type: Literal["error"] = "error"
    code: Literal["tool", "deadline", "rejected", "cancelled"]
    error_type: str
    message: str
    retryable: bool = True


ReplyMessage = Annotated[Accepted | Progress | Result | TaskFailure, Field(discriminator="type")]
ControlMessage = Annotated[Cancel | Ping, Field(discriminator="type")]

_M = TypeVar("_M")
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def encode(message: BaseModel, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Serialise ``message``; ``ProtocolError`` if it is larger than ``max_payload`` or not JSON."""
    try:
        data = message.__pydantic_serializer__.to_json(message)
    except (ValueError, TypeError) as exc:  # PydanticSerializationError is a ValueError
        raise ProtocolError(f"cannot serialise {type(message).__name__}: {exc}") from None
    if len(data) > max_payload:
        raise ProtocolError(f"{type(message).__name__} is {len(data)} bytes; the limit is {max_payload}")
    return data


def decode(
    payload: bytes | bytearray, kind: type[_M] | Any, *, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> Any:
    """Parse ``payload`` as ``kind`` (a message class or a discriminated union).

    Raises ``ProtocolError`` with a reason fit for a log line: oversized, not JSON, a
    version this side does not speak, or a shape that does not match.
    """
    if len(payload) > max_payload:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the limit of {max_payload}")
    try:
        return _adapter(kind).validate_json(payload)
    except ValidationError as exc:
        # The slow path runs only for bad input: work out the most useful reason.
        raise ProtocolError(_diagnose(payload, exc)) from None


def _diagnose(payload: bytes | bytearray, exc: ValidationError) -> str:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return "payload is not JSON"
    if not isinstance(data, dict):
        return f"payload is a JSON {type(data).__name__}, not an object"
    if "v" not in data:
        return "not a stepweave message (no protocol version 'v')"
    version = data["v"]
    if version != PROTOCOL_VERSION:
        return f"unsupported protocol version {version!r} (this side speaks {PROTOCOL_VERSION})"
    kind = data.get("type", "message")
    problems = []
    for error in exc.errors(include_url=False)[:3]:
        loc = list(error["loc"])
        if loc and loc[0] == kind:  # a union names the member first: "result.device_id"
            loc = loc[1:]
        problems.append(f"{'.'.join(str(p) for p in loc) or 'payload'}: {error['msg']}")
    return f"malformed {kind!r} message: {'; '.join(problems)}"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under one namespace (``stepweave`` by default, may contain ``/``)."""

    namespace: str = DEFAULT_NAMESPACE

    def __post_init__(self) -> None:
        ns = self.namespace.strip("/")
        if not ns or any(c in ns for c in "+#\0") or "//" in ns:
            raise ValueError(f"invalid MQTT namespace {self.namespace!r}: no wildcards or empty levels")
        object.__setattr__(self, "namespace", ns)

    def status(self, device_id: str) -> str:
        return f"{self.namespace}/devices/{device_id}/status"

    def heartbeat(self, device_id: str) -> str:
        return f"{self.namespace}/devices/{device_id}/heartbeat"

    def tasks(self, device_id: str) -> str:
        return f"{self.namespace}/devices/{device_id}/tasks"

    def control(self, device_id: str) -> str:
        return f"{self.namespace}/devices/{device_id}/control"

    def results(self, orchestrator_id: str, device_id: str) -> str:
        return f"{self.namespace}/orchestrators/{orchestrator_id}/results/{device_id}"

    def all_status(self) -> str:
        return f"{self.namespace}/devices/+/status"

    def all_heartbeats(self) -> str:
        return f"{self.namespace}/devices/+/heartbeat"

    def all_results(self, orchestrator_id: str) -> str:
        return f"{self.namespace}/orchestrators/{orchestrator_id}/results/+"

    def device_of(self, topic: str) -> str | None:
        """The device id in a status, heartbeat or results topic of this namespace."""
        prefix = self.namespace + "/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        if len(parts) == 3 and parts[0] == "devices":
            return parts[1]
        if len(parts) == 4 and parts[0] == "orchestrators" and parts[2] == "results":
            return parts[3]
        return None
