"""The CLI's telemetry path: light providers, records, the export process.

What the export process makes from a run's records must be what the SDK path makes from
the same run (names, attributes, statuses, parents, metric points): the first test runs
one graph both ways and compares. The others try the parts: a real export process
posting to an OTLP receiver, an export process that died, sampling, span semantics.
"""

from __future__ import annotations

import asyncio
import enum
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from orchestrator import Orchestrator, Task, TaskGraph
from orchestrator.telemetry.exportd import RecordExporter
from orchestrator.telemetry.light import ShippingMeterProvider, ShippingTracerProvider, sampler_from_env
from orchestrator.telemetry.sdk import configure_from_env
from orchestrator.telemetry.shipping import Shipper
from orchestrator.telemetry.testing import OTLPReceiver
from orchestrator.telemetry.wire import SPAN_FIELDS as _SPAN_FIELDS
from orchestrator.telemetry.wire import encode
from tools import tool

from .conftest import Otel, _reset_globals
from .test_spans import Flaky, tools_for


class Shipped:
    """Shipping providers whose records are kept, and an in-process RecordExporter for them."""

    def __init__(self, sampler: Any = None) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.tracer_provider = ShippingTracerProvider(self.records.append, sampler=sampler)
        self.meter_provider = ShippingMeterProvider(self.records.append)

    def export(self) -> tuple[list[ReadableSpan], dict[str, list[tuple[Any, ...]]]]:
        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        exporter = RecordExporter([spans], MeterProvider(metric_readers=[reader]), Resource.create({}))
        for record in self.records:
            exporter.take(record)
        exporter.export_spans()
        found = _points(reader)
        exporter.close()
        return list(spans.get_finished_spans()), found


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[Any, ...]]]:
    """Metric name -> sorted (attributes, count or value) of its points."""
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[Any, ...]]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    amount = getattr(point, "count", None)  # a histogram's; a counter's value
                    if amount is None:
                        amount = getattr(point, "value", None)
                    labels = tuple(sorted((point.attributes or {}).items()))
                    found.setdefault(metric.name, []).append((labels, amount))
    return {name: sorted(points) for name, points in found.items()}


@pytest.fixture
def shipped() -> Iterator[Shipped]:
    installed = Shipped()
    _reset_globals()
    trace.set_tracer_provider(installed.tracer_provider)
    metrics.set_meter_provider(installed.meter_provider)
    try:
        yield installed
    finally:
        _reset_globals()


def _graph() -> TaskGraph:
    return TaskGraph(
        [
            Task(id="get", tool="fetch"),  # fails once, then succeeds: two attempts
            Task(id="add", tool="merge", args={"value": "${{ steps.get.output }}"}),
            Task(id="bad", tool="broken"),  # fails
            Task(id="after", tool="merge", args={"value": 1}, deps=("bad",)),  # skipped
        ],
        name="pipeline",
    )


def _shape(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """What must agree between the two paths: everything but ids and times."""
    run = next(s for s in spans if s.name.startswith("run"))
    out = []
    for span in spans:
        attributes = dict(span.attributes or {})
        if "stepweave.task.retry_delay" in attributes:  # jittered: only that it is there
            attributes["stepweave.task.retry_delay"] = "a delay"
        parent = (
            "run" if span.parent is not None and span.parent.span_id == run.context.span_id else span.parent
        )
        same_trace = span.context.trace_id == run.context.trace_id
        out.append(
            (
                span.name,
                tuple(sorted((k, str(v)) for k, v in attributes.items())),
                span.status.status_code,
                span.status.description,
                parent,
                same_trace,
                span.kind,
                span.instrumentation_scope.name if span.instrumentation_scope else None,
            )
        )
        assert span.start_time is not None and span.end_time is not None
        assert span.start_time <= span.end_time
    return sorted(out, key=repr)


async def _run_pipeline() -> None:
    orchestrator = Orchestrator(tools=tools_for(Flaky(failures=1)), failure_policy="continue")
    result = await orchestrator.run(_graph(), run_id="run-ship-1")
    assert result.status.value == "failed"


async def test_the_shipped_path_makes_what_the_sdk_path_makes(otel: Otel) -> None:
    await _run_pipeline()
    sdk_spans = otel.finished()
    sdk_points = _points(otel.metrics)
    _reset_globals()
    installed = Shipped()
    trace.set_tracer_provider(installed.tracer_provider)
    metrics.set_meter_provider(installed.meter_provider)
    await _run_pipeline()
    assert any(record[0] == "t" for record in installed.records)  # the fast path ran
    shipped_spans, shipped_points = installed.export()
    assert _shape(shipped_spans) == _shape(sdk_spans)
    assert len(shipped_spans) == 5  # run, get x2, add, bad (after is skipped: no attempt)
    assert shipped_points == sdk_points
    assert {"stepweave.task.retries", "stepweave.task.duration", "stepweave.task.queue_wait"} <= set(
        shipped_points
    )


async def _run_cancelled() -> None:
    started = asyncio.Event()

    @tool
    async def slow() -> None:
        """Waits until cancelled."""
        started.set()
        await asyncio.sleep(60)

    run = Orchestrator(tools=[slow]).start(
        TaskGraph([Task(id="long", tool="slow")], name="stopped"), run_id="run-ship-2"
    )
    async with run:
        await asyncio.wait_for(started.wait(), 30)
        run.cancel()
        result = await run.wait()
    assert result.status.value == "cancelled"


async def test_a_cancelled_run_is_shipped_as_the_sdk_path_records_it(otel: Otel) -> None:
    # A cancelled task's error kind is an ErrorKind (a StrEnum): it must travel as a string.
    await _run_cancelled()
    sdk_spans = otel.finished()
    _reset_globals()
    installed = Shipped()
    trace.set_tracer_provider(installed.tracer_provider)
    metrics.set_meter_provider(installed.meter_provider)
    await _run_cancelled()
    encode(installed.records)  # every record can be sent
    shipped_spans, _ = installed.export()
    assert _shape(shipped_spans) == _shape(sdk_spans)
    task = next(s for s in shipped_spans if s.name == "task slow")
    assert (task.attributes or {})["error.type"] == "Cancelled"


async def test_a_run_that_is_not_sampled_still_counts_its_tasks() -> None:
    installed = Shipped(sampler=sampler_from_env("always_off", ""))
    _reset_globals()
    trace.set_tracer_provider(installed.tracer_provider)
    metrics.set_meter_provider(installed.meter_provider)
    try:
        await _run_pipeline()
    finally:
        _reset_globals()
    spans, points = installed.export()
    assert spans == []
    assert sum(count for _, count in points["stepweave.task.duration"]) == 3  # get, add, bad


def test_an_export_process_posts_to_a_receiver_and_force_flush_waits_for_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "shipper-test"}
        shipper = Shipper(env)
        try:
            provider = ShippingTracerProvider(shipper.add, flush=shipper.force_flush)
            meters = ShippingMeterProvider(shipper.add)
            tracer = provider.get_tracer("test")
            with tracer.start_as_current_span("outer", kind=SpanKind.SERVER) as outer:
                tracer.start_span("inner", attributes={"n": 1, "tags": ["a", "b"]}).end()
                outer.set_attribute("done", True)
            meters.get_meter("test").create_counter("things").add(2, {"k": "v"})
            assert provider.force_flush(30_000)
            # force_flush returned: the export is done, no waiting on the receiver here.
            spans = {s.name: s for s in receiver.spans}
            assert "things" in receiver.metrics
        finally:
            shipper.shutdown()
        assert shipper.returncode == 0
        tracer.start_span("after shutdown").end()  # at interpreter exit, say: dropped quietly
        shipper.flush()
        assert provider.force_flush(1_000) is False
    assert "telemetry" not in capfd.readouterr().err
    assert set(spans) == {"outer", "inner"}
    assert spans["inner"].parent_span_id == spans["outer"].span_id
    assert spans["inner"].trace_id == spans["outer"].trace_id
    assert spans["inner"].attributes["n"] == 1 and spans["outer"].attributes["done"] is True
    assert spans["outer"].service == "shipper-test"


def test_a_dead_export_process_costs_one_line_and_nothing_else(capfd: pytest.CaptureFixture[str]) -> None:
    shipper = Shipper(command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    shipper.wait_for_exit(30)
    provider = ShippingTracerProvider(shipper.add, flush=shipper.force_flush)
    tracer = provider.get_tracer("test")
    for _ in range(3):
        tracer.start_span("lost").end()
        shipper.flush()  # the first flush finds the pipe broken; later ones drop quietly
    assert provider.force_flush(5_000) is False
    shipper.shutdown()
    err = capfd.readouterr().err
    assert err.count("telemetry export process ended (3)") == 1, err


def test_span_semantics_follow_the_api() -> None:
    records: list[tuple[Any, ...]] = []
    tracer = ShippingTracerProvider(records.append).get_tracer("test", "1.0")
    span = tracer.start_span("work", attributes={"ok": 1, "bad": object(), "list": [1, 2]})  # type: ignore[dict-item]
    span.set_attribute("nested", {"not": "allowed"})
    span.set_status(StatusCode.ERROR, "first")
    span.set_status(StatusCode.UNSET)  # never replaces a status that was set
    span.record_exception(ValueError("boom"))
    span.end()
    span.set_attribute("late", 1)  # an ended span changes no more
    span.end()  # ending twice sends one record
    assert len(records) == 1
    fields = dict(zip(("kind", *_SPAN_FIELDS), records[0], strict=True))
    assert fields["attributes"] == {"ok": 1, "list": (1, 2)}
    assert (fields["status_code"], fields["status_description"]) == (StatusCode.ERROR.value, "first")
    assert fields["events"][0][0] == "exception" and fields["events"][0][2]["exception.type"] == "ValueError"
    assert (fields["scope"], fields["scope_version"]) == ("test", "1.0")
    assert fields["parent_span_id"] == 0 and fields["trace_id"] and fields["span_id"]


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_enum_members_travel_as_plain_values() -> None:
    records: list[tuple[Any, ...]] = []
    tracer = ShippingTracerProvider(records.append).get_tracer("test")
    span = tracer.start_span("work", attributes={"color": Color.RED, Color.RED: Level.HIGH})
    span.set_attribute("levels", [Level.HIGH, True])
    span.end()
    attributes = dict(zip(("kind", *_SPAN_FIELDS), records[0], strict=True))["attributes"]
    assert attributes == {"color": "red", "red": 3, "levels": (3, True)}
    assert [type(v) for v in attributes.values()] == [str, int, tuple]
    assert all(type(k) is str for k in attributes)
    encode(records)  # marshal carries it


def test_a_record_that_cannot_be_sent_is_dropped_alone(capfd: pytest.CaptureFixture[str]) -> None:
    reader = "import sys; data = sys.stdin.buffer.read(); print(len(data))"
    shipper = Shipper(command=[sys.executable, "-c", reader])
    shipper.add(("m", 0, 1.0, {}))
    shipper.add(("m", 0, object(), {}))  # not marshal-able: a bug of whoever made it
    shipper.add(("m", 0, 2.0, {}))
    shipper.flush()
    shipper.shutdown()
    err = capfd.readouterr().err
    assert "cannot be sent" in err and "ended" not in err, err
    assert shipper.returncode == 0
    assert shipper.wait_for_exit(5) == 0


def test_a_bad_sampler_is_one_line_and_no_telemetry(capsys: pytest.CaptureFixture[str]) -> None:
    assert not configure_from_env({"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "sometimes"})
    assert "telemetry is off" in capsys.readouterr().err
    assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
