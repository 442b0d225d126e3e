"""Tracer and meter providers whose spans and points are plain records for an export process.

The OpenTelemetry SDK makes a span at ~35 µs and encodes it for OTLP at ~20 µs more, in
the traced process; a stepweave task costs ~13 µs, so tracing a graph of small tasks made
it 8x slower. These providers implement the API with the least a span needs (ids, times,
a dict of attributes, a status) and hand each ended span, as one tuple, to a
:class:`~.shipping.Shipper`; the SDK's exporters run in the export process it started, on
another core. What they leave to that process: span limits, attribute checks beyond the
types the API allows, and every exporter setting.

Sampling follows ``OTEL_TRACES_SAMPLER`` (and ``_ARG``) as the SDK would, with the SDK's own
samplers; the default, ``parentbased_always_on``, is decided inline (it is every span).
Observable instruments are not supported (their callbacks would have to run in this
process on the export process's schedule): ``create_observable_*`` gives the API's no-op.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes

__all__ = ["ShippingMeterProvider", "ShippingTracerProvider", "sampler_from_env"]

#: Where records go: ``Shipper.add``.
Sink = Callable[[tuple[Any, ...]], None]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_PRIMITIVES: tuple[type[Any], ...] = (str, bool, int, float, bytes)  # what marshal carries
_EMPTY_STATE = TraceState()


def _plain(value: Any) -> Any:
    """``value`` as its exact base type (a StrEnum member as a ``str``...), or ``None``."""
    for kind in _PRIMITIVES:  # bool before int: True stays True
        if isinstance(value, kind):
            return kind(value)
    return None


def _clean(value: Any) -> Any:
    """``value`` as an attribute value the wire can carry, or ``None`` to drop it."""
    if isinstance(value, _PRIMITIVES):
        return _plain(value)
    if isinstance(value, Sequence):
        items = tuple(_plain(v) for v in value)
        return None if None in items else items
    return None


def _attributes(given: Attributes | Mapping[str, Any] | None) -> dict[str, Any]:
    if not given:
        return {}
    out = {}
    raw: Any
    for raw, value in given.items():
        if type(raw) is not str:  # a StrEnum member as a key, say; anything else is dropped
            if not isinstance(raw, str):
                continue
            raw = str(raw)
        key: str = raw
        if type(value) in _PRIMITIVES:  # the usual case, checked fastest
            out[key] = value
        else:
            clean = _clean(value)
            if clean is not None:
                out[key] = clean
    return out


class _Span(trace.Span):
    """A recording span: fields until it ends, then one record for the sink."""

    __slots__ = (
        "_attributes",
        "_context",
        "_ended",
        "_events",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_sink",
        "_start",
        "_status",
        "_tracer",
    )

    def __init__(
        self,
        tracer: _Tracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        links: list[tuple[int, int, dict[str, Any]]],
        start: int,
    ) -> None:
        self._tracer = tracer
        self._sink = tracer.sink
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._links = links
        self._events: list[tuple[str, int, dict[str, Any]]] = []
        self._start = start
        self._status: Status | None = None
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        if not self._ended:
            if type(key) is str and type(value) in _PRIMITIVES:
                self._attributes[key] = value
            else:
                self._attributes.update(_attributes({key: value}))

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if not self._ended:
            self._attributes.update(_attributes(attributes))

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if not self._ended:
            self._events.append((str(name), int(timestamp or time.time_ns()), _attributes(attributes)))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if not self._ended and context.is_valid:
            self._links.append((context.trace_id, context.span_id, _attributes(attributes)))

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = str(name)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        current = self._status
        # As the SDK: OK is final, and UNSET never replaces a status that was set.
        if current is not None and (
            current.status_code is StatusCode.OK or status.status_code is StatusCode.UNSET
        ):
            return
        self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.escaped": str(escaped),
        }
        event.update(_attributes(attributes))
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        context, parent, status = self._context, self._parent, self._status
        tracer = self._tracer
        self._sink(
            (
                "s",
                context.trace_id,
                context.span_id,
                parent.span_id if parent is not None else 0,
                parent.is_remote if parent is not None else False,
                int(context.trace_flags),
                tuple(context.trace_state.items()) if context.trace_state else (),
                self._name,
                self._kind.value,
                self._start,
                int(end_time) if end_time is not None else time.time_ns(),
                status.status_code.value if status is not None else 0,
                None if status is None or status.description is None else str(status.description),
                self._attributes,
                self._events,
                self._links,
                tracer.scope,
                tracer.version,
            )
        )

    def __repr__(self) -> str:
        return f"_Span(name={self._name!r}, context={self._context!r})"


class _Tracer(trace.Tracer):
    def __init__(self, provider: ShippingTracerProvider, scope: str, version: str | None) -> None:
        self.sink = provider.sink
        self.scope = str(scope)
        self.version = str(version or "")
        self._provider = provider

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        parent = trace.get_current_span(context).get_span_context()
        provider = self._provider
        if parent.is_valid:
            trace_id = parent.trace_id
            state = parent.trace_state
        else:
            parent = None  # type: ignore[assignment]
            trace_id = provider.new_trace_id()
            state = _EMPTY_STATE
        sampled = provider.sampled(parent, trace_id, name, kind, attributes, links)
        span_context = SpanContext(
            trace_id, provider.new_span_id(), False, _SAMPLED if sampled else _NOT_SAMPLED, state
        )
        if not sampled:
            return NonRecordingSpan(span_context)
        link_records = [
            (link.context.trace_id, link.context.span_id, _attributes(link.attributes))
            for link in links or ()
            if link.context.is_valid
        ]
        return _Span(
            self,
            name if type(name) is str else str(name),
            span_context,
            parent,
            kind,
            _attributes(attributes),
            link_records,
            int(start_time) if start_time is not None else time.time_ns(),
        )

    # The API types this with its private decorator's class; a plain context manager is
    # the same protocol.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


def sampler_from_env(name: str, argument: str) -> Any:
    """The SDK sampler ``OTEL_TRACES_SAMPLER=name`` (``_ARG=argument``) names, or ``None`` for
    the default (``parentbased_always_on``), which :class:`ShippingTracerProvider` decides
    inline. Raises ``ValueError`` for a name the SDK does not know."""
    name = name.strip().lower() or "parentbased_always_on"
    if name == "parentbased_always_on":
        return None
    from opentelemetry.sdk.trace import sampling

    def ratio() -> float:
        try:
            rate = float(argument) if argument.strip() else 1.0
        except ValueError:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={argument!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={argument!r} is not between 0 and 1")
        return rate

    choices: dict[str, Callable[[], Any]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio()),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBased(sampling.TraceIdRatioBased(ratio())),
    }
    if name not in choices:
        raise ValueError(
            f"OTEL_TRACES_SAMPLER={name!r}: use one of parentbased_always_on, {', '.join(choices)}"
        )
    return choices[name]()


class ShippingTracerProvider(trace.TracerProvider):
    """Tracers whose ended spans go to ``sink`` as records (see the module's docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        sampler: Any = None,
        flush: Callable[[float], bool] | None = None,
        shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.sink = sink
        self._sampler = sampler
        self._flush = flush
        self._shutdown = shutdown
        # Not the module's generator: an application's random.seed() must not repeat ids.
        self._random = random.Random()
        self._tracers: dict[tuple[str, str | None], _Tracer] = {}
        self._lock = threading.Lock()

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        key = (instrumenting_module_name, instrumenting_library_version)
        tracer = self._tracers.get(key)
        if tracer is None:
            with self._lock:
                tracer = self._tracers.setdefault(
                    key, _Tracer(self, instrumenting_module_name, instrumenting_library_version)
                )
        return tracer

    def new_trace_id(self) -> int:
        # 0 is the invalid id (one chance in 2**128): 1 instead, without a loop.
        return self._random.getrandbits(128) or 1

    def new_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def sampled(
        self,
        parent: SpanContext | None,
        trace_id: int,
        name: str,
        kind: SpanKind,
        attributes: Attributes,
        links: Sequence[Link] | None,
    ) -> bool:
        if self._sampler is None:  # parentbased_always_on
            return parent is None or parent.trace_flags.sampled
        parent_context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
        result = self._sampler.should_sample(parent_context, trace_id, name, kind, attributes, links)
        return bool(result.decision.is_sampled())

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Every span ended so far exported (waits for the export process)."""
        return self._flush(timeout_millis / 1000) if self._flush is not None else True

    def shutdown(self) -> None:
        if self._shutdown is not None:
            self._shutdown()


# -- metrics ------------------------------------------------------------------------------


class _Instrument:
    def __init__(self, meter: _Meter, key: int) -> None:
        self._sink = meter.sink
        self._key = key

    def _point(self, value: float, attributes: Attributes) -> None:
        self._sink(("m", self._key, value, _attributes(attributes)))


class _Counter(_Instrument, metrics.Counter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        if amount >= 0:  # as the SDK: a counter only grows
            self._point(amount, attributes)


class _UpDownCounter(_Instrument, metrics.UpDownCounter):
    def add(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._point(amount, attributes)


class _Histogram(_Instrument, metrics.Histogram):
    def record(
        self, amount: int | float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        if amount >= 0:  # as the SDK: a histogram takes no negative value
            self._point(amount, attributes)


class _Gauge(_Instrument, metrics._Gauge):  # noqa: SLF001  (the API has no public name for it yet)
    def set(self, amount: int | float, attributes: Attributes = None, context: Context | None = None) -> None:
        self._point(amount, attributes)


_CLASSES: dict[str, type[_Instrument]] = {
    "counter": _Counter,
    "up_down_counter": _UpDownCounter,
    "histogram": _Histogram,
    "gauge": _Gauge,
}


class _Meter(metrics.Meter):
    def __init__(self, provider: ShippingMeterProvider, name: str, version: str | None) -> None:
        super().__init__(name, version)
        self.sink = provider.sink
        self._provider = provider
        self.version_text = version or ""

    def _instrument(self, kind: str, name: str, unit: str, description: str) -> Any:
        return self._provider.instrument(self, kind, name, unit, description)

    def create_counter(self, name: str, unit: str = "", description: str = "") -> metrics.Counter:
        instrument: metrics.Counter = self._instrument("counter", name, unit, description)
        return instrument

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> metrics.UpDownCounter:
        instrument: metrics.UpDownCounter = self._instrument("up_down_counter", name, unit, description)
        return instrument

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> metrics.Histogram:
        instrument: metrics.Histogram = self._instrument("histogram", name, unit, description)
        return instrument

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> metrics._Gauge:
        instrument: metrics._Gauge = self._instrument("gauge", name, unit, description)
        return instrument

    def create_observable_counter(
        self, name: str, callbacks: Any = None, unit: str = "", description: str = ""
    ) -> Any:
        return metrics.NoOpObservableCounter(name, callbacks, unit, description)

    def create_observable_gauge(
        self, name: str, callbacks: Any = None, unit: str = "", description: str = ""
    ) -> Any:
        return metrics.NoOpObservableGauge(name, callbacks, unit, description)

    def create_observable_up_down_counter(
        self, name: str, callbacks: Any = None, unit: str = "", description: str = ""
    ) -> Any:
        return metrics.NoOpObservableUpDownCounter(name, callbacks, unit, description)


class ShippingMeterProvider(metrics.MeterProvider):
    """Meters whose points go to ``sink`` as records; the export process aggregates them."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._meters: dict[tuple[str, str | None], _Meter] = {}
        #: One key per (scope, kind, name): the same instrument asked for twice is one.
        self._keys: dict[tuple[str, str, str, str], int] = {}
        self._lock = threading.Lock()

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> metrics.Meter:
        key = (name, version)
        meter = self._meters.get(key)
        if meter is None:
            with self._lock:
                meter = self._meters.setdefault(key, _Meter(self, name, version))
        return meter

    def instrument(self, meter: _Meter, kind: str, name: str, unit: str, description: str) -> _Instrument:
        identity = (meter.name, meter.version_text, kind, name)
        with self._lock:
            key = self._keys.get(identity)
            if key is None:
                key = self._keys[identity] = len(self._keys)
                self.sink(("i", key, kind, name, unit, description, meter.name, meter.version_text))
        return _CLASSES[kind](meter, key)
