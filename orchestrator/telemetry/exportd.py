"""The export process: ``python -m orchestrator.telemetry.exportd``, started by a
:class:`~.shipping.Shipper`, never by hand.

It reads frames of records (:mod:`.wire`) on standard input and exports them with the
OpenTelemetry SDK, configured from the same ``OTEL_*`` variables as the traced process
(:func:`.sdk.export_side`): spans become the SDK's ``ReadableSpan`` and go to its span
exporters in batches of up to 512 (sooner when no more records are waiting); metric points
go to SDK instruments of a ``MeterProvider`` whose readers export them. The traced
process's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) is this process's.

Ctrl-C is ignored: the traced process decides when export ends, by closing the stream;
then everything left is exported and the process exits. If the traced process is killed,
the stream ends the same way.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .names import (
    ERROR_TYPE,
    RUN_ID,
    SCOPE,
    TASK_ATTEMPT,
    TASK_DURATION,
    TASK_ERROR,
    TASK_ID,
    TASK_QUEUE_WAIT,
    TASK_RETRIES,
    TASK_RETRY_DELAY,
    TASK_STATUS,
    TASK_TOOL,
)
from .sdk import export_side

__all__ = ["RecordExporter", "main"]

SPAN_BATCH = 512
_NS = 1_000_000_000
NICENESS = 10


class RecordExporter:
    """Turns records into SDK objects and hands them to the SDK's exporters (span exporters,
    a ``MeterProvider`` or ``None``, and the resource spans carry)."""

    def __init__(self, span_exporters: list[Any], meter_provider: Any, resource: Any) -> None:
        from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import (
            Link,
            SpanContext,
            SpanKind,
            Status,
            StatusCode,
            TraceFlags,
            TraceState,
        )

        self.span_exporters, self.meter_provider, self.resource = span_exporters, meter_provider, resource
        self._readable = ReadableSpan
        self._event = Event
        self._scope = InstrumentationScope
        self._context = SpanContext
        self._link = Link
        self._kind = SpanKind
        self._status = Status
        self._code = StatusCode
        self._flags = TraceFlags
        self._state = TraceState
        self._limits = SpanLimits()
        self._scopes: dict[tuple[str, str], Any] = {}
        self._instruments: dict[int, Any] = {}
        self._task_instruments: dict[str, tuple[Any, Any, Any]] = {}
        self.spans: list[Any] = []

    def take(self, record: Sequence[Any]) -> None:
        kind = record[0]
        if kind == "s":
            self._add_span(*record[1:])
        elif kind == "t":
            self._task(record)
        elif kind == "m":
            instrument = self._instruments.get(record[1])
            if instrument is not None:
                instrument(record[2], record[3])
        elif kind == "i":
            self._instruments[record[1]] = self._instrument(*record[2:])
        elif kind == "f":
            self.export_spans()
            if self.meter_provider is not None:
                self.meter_provider.force_flush()
            sys.stdout.write(f"{record[1]}\n")
            sys.stdout.flush()

    def export_spans(self) -> None:
        spans, self.spans = self.spans, []
        if spans:
            for exporter in self.span_exporters:
                exporter.export(spans)

    def close(self) -> None:
        self.export_spans()
        for exporter in self.span_exporters:
            exporter.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()

    def _add_span(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int,
        parent_remote: bool,
        flags: int,
        state: Sequence[tuple[str, str]],
        name: str,
        kind: int,
        start: int,
        end: int,
        code: int,
        description: str | None,
        attributes: Mapping[str, Any],
        events: Sequence[tuple[str, int, dict[str, Any]]],
        links: Sequence[tuple[int, int, dict[str, Any]]],
        scope: str,
        version: str,
    ) -> None:
        """One ended span (``wire.SPAN_FIELDS``) queued for the span exporters."""
        context = self._context
        trace_state = self._state(list(state)) if state else None
        scope_key = (scope, version)
        instrumentation_scope = self._scopes.get(scope_key)
        if instrumentation_scope is None:
            instrumentation_scope = self._scopes[scope_key] = self._scope(scope, version or None)
        limits = self._limits
        most = limits.max_span_attributes
        if (most is not None and len(attributes) > most) or limits.max_span_attribute_length is not None:
            from opentelemetry.attributes import BoundedAttributes

            attributes = BoundedAttributes(
                limits.max_span_attributes,
                attributes,
                immutable=True,
                max_value_len=limits.max_span_attribute_length,
            )
        span = self._readable(
            name=name,
            context=context(trace_id, span_id, False, self._flags(flags), trace_state),
            parent=context(trace_id, parent_id, parent_remote) if parent_id else None,
            resource=self.resource,
            attributes=attributes,
            events=[self._event(n, a, t) for n, t, a in events] if events else (),
            links=[self._link(context(t, s, True), a) for t, s, a in links] if links else (),
            kind=self._kind(kind),
            status=self._status(self._code(code), description),
            start_time=start,
            end_time=end,
            instrumentation_scope=instrumentation_scope,
        )
        self.spans.append(span)
        if len(self.spans) >= SPAN_BATCH:
            self.export_spans()

    def _task(self, record: Sequence[Any]) -> None:
        """A task attempt's span and metric points (see :mod:`.shipped`)."""
        (
            _,
            trace_id,
            span_id,
            parent_id,
            flags,
            version,
            run_id,
            task_id,
            tool,
            attempt,
            start,
            end,
            outcome,
            error_type,
            error_message,
            retry_delay,
            ready,
            first_start,
        ) = record
        metrics = self._task_metrics(version)
        if metrics is not None:
            queue_wait, task_duration, retries = metrics
            by_tool = {TASK_TOOL: tool}
            if ready is not None and attempt:
                queue_wait(max(0.0, start - ready), by_tool)
            if outcome == "retrying":
                retries(1, by_tool)
            if first_start is not None:
                task_duration(max(0.0, end - first_start), {TASK_TOOL: tool, TASK_STATUS: outcome})
        if not span_id:
            return
        attributes: dict[str, Any] = {
            RUN_ID: run_id,
            TASK_ID: task_id,
            TASK_TOOL: tool,
            TASK_ATTEMPT: attempt,
            TASK_STATUS: outcome,
        }
        if retry_delay is not None:
            attributes[TASK_RETRY_DELAY] = retry_delay
        if error_type is not None:
            attributes[ERROR_TYPE] = error_type
            attributes[TASK_ERROR] = error_message
            code, description = self._code.ERROR, f"{error_type}: {error_message}"
        elif outcome == "succeeded":
            code, description = self._code.OK, None
        else:
            code, description = self._code.UNSET, None
        # As RunTelemetry makes it: an INTERNAL span under the run span, times in ns.
        self._add_span(
            trace_id, span_id, parent_id, False, flags, (), f"task {tool}".strip(), self._kind.INTERNAL.value,
            int(start * _NS), int(end * _NS), code.value, description, attributes, (), (), SCOPE, version,
        )  # fmt: skip

    def _task_metrics(self, version: str) -> tuple[Any, Any, Any] | None:
        if self.meter_provider is None:
            return None
        found = self._task_instruments.get(version)
        if found is None:
            meter = self.meter_provider.get_meter(SCOPE, version or None)
            found = self._task_instruments[version] = (
                meter.create_histogram(*TASK_QUEUE_WAIT).record,
                meter.create_histogram(*TASK_DURATION).record,
                meter.create_counter(*TASK_RETRIES).add,
            )
        return found

    def _instrument(self, kind: str, name: str, unit: str, description: str, scope: str, version: str) -> Any:
        if self.meter_provider is None:
            return None
        meter = self.meter_provider.get_meter(scope, version or None)
        if kind == "counter":
            return meter.create_counter(name, unit, description).add
        if kind == "up_down_counter":
            return meter.create_up_down_counter(name, unit, description).add
        if kind == "histogram":
            return meter.create_histogram(name, unit, description).record
        if kind == "gauge":
            return meter.create_gauge(name, unit, description).set
        return None


def _read(stream: Any, frames: queue.SimpleQueue[list[Any] | None]) -> None:
    from .wire import read_frames

    try:
        for records in read_frames(stream):
            frames.put(records)
    except (ValueError, EOFError, TypeError) as exc:  # a broken stream ends export
        print(f"stepweave: telemetry stream broken: {exc}", file=sys.stderr)
    finally:
        frames.put(None)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Background work: when cores are scarce the traced run goes first, and export catches
    # up after (it is done before the traced process exits; see .shipping).
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)
    try:
        exporter = RecordExporter(*export_side(os.environ))
    except (ImportError, ValueError) as exc:
        print(f"stepweave: telemetry is off: {exc}", file=sys.stderr)
        return 1
    frames: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
    # A thread drains the pipe while the main thread exports, so the traced process's
    # writes do not wait on an HTTP request.
    reader = threading.Thread(target=_read, args=(sys.stdin.buffer, frames), daemon=True)
    reader.start()
    while True:
        records = frames.get()
        if records is None:
            break
        for record in records:
            exporter.take(record)
        if frames.empty():  # nothing more waiting: export now rather than at 512
            exporter.export_spans()
    exporter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
