"""A run's task attempts as one record each, for the export process (the fast path).

With the CLI's providers (:mod:`.light`), a task attempt needs no span object at all: what
its span and its metric points say is known when it ends, so :class:`ShippedRunTelemetry`
sends one ``"t"`` record per attempt and the export process (:mod:`.exportd`) makes the
``task {tool}`` span and the duration, queue-wait and retry points from it, exactly as
:class:`~.spans.RunTelemetry` makes them in the traced process (same names, attributes,
status). This is what keeps tracing within a few µs per task: ~3 µs instead of ~15 µs
through span objects.

The record, after its ``"t"``: ``TASK_FIELDS``. Times are the events' own (seconds since
the epoch, as floats: the export process converts them, as :class:`RunTelemetry` does).
``span_id`` 0 means "metric points only" (a run that is not sampled, or a task cancelled
between attempts, which has no attempt to close). ``ready`` is set on the record of a
task's first attempt (its queue wait is ``start - ready``), ``first_start`` on the record
that ends the task (its duration is ``end - first_start``); otherwise they are ``None``.

The handlers do as little as they can (the engine calls them three times per task): a
started attempt keeps its event, and everything else is worked out when it ends.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ..events import TaskEnded, TaskRetrying, TaskStarted
from ..graph import TaskStatus
from .light import ShippingTracerProvider
from .spans import RunTelemetry

__all__ = ["TASK_FIELDS", "ShippedRunTelemetry"]

TASK_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "trace_flags",
    "scope_version",
    "run_id",
    "task_id",
    "tool",
    "attempt",
    "start",
    "end",
    "outcome",  # the span's stepweave.task.status: a TaskStatus value, or "retrying"
    "error_type",
    "error_message",
    "retry_delay",
    "ready",
    "first_start",
)

#: TaskStatus members as plain strings (the wire carries no enum).
_VALUES = {status: status.value for status in TaskStatus}


class ShippedRunTelemetry(RunTelemetry):
    """:class:`RunTelemetry` whose task attempts go to the shipper as records."""

    def __init__(
        self, run_id: str, registry: dict[str, RunTelemetry], provider: ShippingTracerProvider
    ) -> None:
        super().__init__(run_id, registry)
        self._sink = provider.sink
        self._new_span_id = provider.new_span_id
        self._version = getattr(self._tracer, "version", "")
        #: The running attempt of each task: its TaskStarted event.
        self._open: dict[str, TaskStarted] = {}
        #: Span ids given out before an attempt ended (``attempt_context``: device calls).
        self._span_ids: dict[str, int] = {}
        self._parent: tuple[int, int, int, bool] | None = None
        self.handlers[TaskStarted] = self._attempt_started
        self.handlers[TaskRetrying] = self._attempt_retrying
        self.handlers[TaskEnded] = self._attempt_ended

    def attempt_context(self, task_id: str) -> Context | None:
        if task_id not in self._open:
            return None
        trace_id, _, _, sampled = self._parent or self._parent_fields()
        if not trace_id:
            return None
        span_id = self._span_ids.get(task_id)
        if span_id is None:
            span_id = self._span_ids[task_id] = self._new_span_id()
        flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        return trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, False, flags)))

    def _attempt_started(self, event: TaskStarted) -> None:
        task_id = event.task_id
        self._open[task_id] = event
        if task_id not in self._started:
            self._started[task_id] = event.at

    def _attempt_retrying(self, event: TaskRetrying) -> None:
        error = event.error
        self._send(
            event.task_id, event.at, "retrying", str(error.type), str(error.message), event.delay, None
        )

    def _attempt_ended(self, event: TaskEnded) -> None:
        task_id = event.task_id
        first_start = self._started.pop(task_id, None)
        error = event.error
        if error is None:
            self._send(task_id, event.at, _VALUES[event.status], None, None, None, first_start)
        else:
            # str(): an ErrorKind is a StrEnum, and the wire carries plain strings only.
            self._send(
                task_id,
                event.at,
                _VALUES[event.status],
                str(error.type),
                str(error.message),
                None,
                first_start,
            )

    def _send(
        self,
        task_id: str,
        at: float,
        outcome: str,
        error_type: str | None,
        error_message: str | None,
        retry_delay: float | None,
        first_start: float | None,
    ) -> None:
        started = self._open.pop(task_id, None)
        ready = self._ready.pop(task_id, None)
        if started is None:
            if first_start is None and outcome != "retrying":
                return  # skipped, or cancelled before it started: no attempt, no point
            start, attempt, span_id = 0.0, 0, 0  # points only
        else:
            start, attempt = started.at, started.attempt
            span_id = (self._span_ids.pop(task_id, 0) if self._span_ids else 0) or self._new_span_id()
        trace_id, parent_id, flags, sampled = self._parent or self._parent_fields()
        self._sink(
            (
                "t",
                trace_id,
                span_id if sampled else 0,
                parent_id,
                flags,
                self._version,
                self.run_id,
                task_id,
                self._tools.get(task_id) or self._tool(task_id),
                attempt,
                start,
                at,
                outcome,
                error_type,
                error_message,
                retry_delay,
                ready,
                first_start,
            )
        )

    def _parent_fields(self) -> tuple[int, int, int, bool]:
        """The run span's trace id, span id, flags, and whether it is sampled."""
        run = self._run_span
        if run is None:  # no run span (yet): points only
            return (0, 0, 0, False)
        context = run.get_span_context()
        flags = context.trace_flags
        self._parent = (context.trace_id, context.span_id, int(flags), flags.sampled)
        return self._parent
