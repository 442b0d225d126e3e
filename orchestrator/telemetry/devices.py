"""Device dispatch across the trace: the orchestrator's span, the W3C context, the agent's span.

The dispatcher wraps each placement of a task on a device in a ``dispatch`` span (kind
PRODUCER, a child of the task attempt's span) and puts that span's W3C ``traceparent``
and ``tracestate`` in the call message; the agent opens its ``device call`` span (kind
CONSUMER) as a child of it, so a device's work shows in the orchestrator's trace. Every
function here returns its argument unchanged when telemetry is off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .hook import active_run, enabled
from .names import (
    DEVICE_ID,
    ERROR_TYPE,
    RUN_ID,
    SCOPE,
    TASK_ATTEMPT,
    TASK_ERROR,
    TASK_ID,
    TASK_STATUS,
    TASK_TOOL,
)

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from ..devices.protocol import TaskRequest
    from ..executors import ToolCall

__all__ = ["TraceFields", "trace_fields", "traced_device_call", "traced_dispatch"]

T = TypeVar("T")


class TraceFields(TypedDict, total=False):
    """The W3C trace context fields of a ``TaskRequest``."""

    traceparent: str
    tracestate: str


def traced_dispatch(attempt: Awaitable[T], call: ToolCall, device_id: str) -> Awaitable[T]:
    """``attempt`` (one placement of ``call`` on ``device_id``) inside a ``dispatch`` span."""
    if not enabled():
        return attempt
    telemetry = active_run(call.run_id)
    parent = telemetry.attempt_context(call.task.id) if telemetry is not None else None
    attributes = {
        RUN_ID: call.run_id,
        TASK_ID: call.task.id,
        TASK_TOOL: call.task.tool,
        TASK_ATTEMPT: call.attempt,
        DEVICE_ID: device_id,
        "messaging.system": "mqtt",
        "messaging.operation.type": "send",
    }
    return _spanned(attempt, f"dispatch {call.task.tool}", parent, attributes, producer=True)


def trace_fields() -> TraceFields:
    """The current span's W3C context as ``TaskRequest`` fields (``{}`` when not tracing)."""
    if not enabled():
        return {}
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    fields = TraceFields()
    if carrier.get("traceparent"):
        fields["traceparent"] = carrier["traceparent"]
    if carrier.get("tracestate"):
        fields["tracestate"] = carrier["tracestate"]
    return fields


def traced_device_call(execution: Awaitable[T], request: TaskRequest, device_id: str) -> Awaitable[T]:
    """``execution`` of ``request`` on this device inside a span that joins the sender's trace."""
    if not enabled():
        return execution
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {"traceparent": request.traceparent, "tracestate": request.tracestate}
    # The fields were validated on decoding; a forged but well-formed context only makes
    # this span claim a parent that does not exist, which collectors show as an orphan.
    parent = TraceContextTextMapPropagator().extract(carrier) if request.traceparent else None
    attributes = {
        RUN_ID: request.run_id,
        TASK_ID: request.task_id,
        TASK_TOOL: request.tool,
        TASK_ATTEMPT: request.attempt,
        DEVICE_ID: device_id,
        "messaging.system": "mqtt",
        "messaging.operation.type": "process",
    }
    return _spanned(execution, f"device call {request.tool}", parent, attributes, producer=False)


async def _spanned(
    work: Awaitable[T], name: str, parent: Context | None, attributes: Mapping[str, Any], *, producer: bool
) -> T:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    kind = SpanKind.PRODUCER if producer else SpanKind.CONSUMER
    span = trace.get_tracer(SCOPE).start_span(name, context=parent, kind=kind, attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        outcome = await work
    except BaseException as exc:
        span.set_attribute(ERROR_TYPE, type(exc).__name__)
        span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc) or type(exc).__name__))
        span.end()
        raise
    finally:
        otel_context.detach(token)
    _outcome(span, outcome)
    span.end()
    return outcome


def _outcome(span: Span, outcome: Any) -> None:
    """Status from a device outcome: a ``Result``, a ``TaskFailure`` or a lost device."""
    from opentelemetry.trace import Status, StatusCode

    kind = getattr(outcome, "type", None)
    if kind == "result":
        span.set_attribute(TASK_STATUS, "succeeded")
        span.set_status(Status(StatusCode.OK))
        return
    if kind == "error":
        error_type, message = str(outcome.error_type), str(outcome.message)
        span.set_attribute("stepweave.device.failure", str(outcome.code))
    else:  # the device was lost (went silent, offline, or never took the request)
        error_type, message = "DeviceLost", str(getattr(outcome, "reason", outcome))
    span.set_attribute(TASK_STATUS, "failed")
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_attribute(TASK_ERROR, message)
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
