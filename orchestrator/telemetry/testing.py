"""A local OTLP/HTTP receiver, for tests, benchmarks and the docs' example.

It accepts what an OTLP/HTTP exporter posts (``/v1/traces`` and ``/v1/metrics``,
protobuf), decodes it with ``opentelemetry-proto`` and keeps it: ``spans`` as plain
``ReceivedSpan`` records, ``metrics`` as the names seen. Real sockets on 127.0.0.1, a real
HTTP server in a thread, so the exporter under test is the real one::

    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, ...}
        ...  # run something that exports
        receiver.wait_for_spans(lambda spans: any(s.name.startswith("run") for s in spans))

It is not a collector: nothing is forwarded or stored beyond this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["OTLPReceiver", "ReceivedSpan"]

#: Largest request body accepted (an exporter batches 512 spans by default: well below this).
_MAX_BODY = 64 << 20


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver got it: ids in hex, attributes as plain values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    #: ``0`` unset, ``1`` ok, ``2`` error (the OTLP status codes).
    status: int
    service: str
    start_ns: int
    end_ns: int


@dataclass
class _Store:
    spans: list[ReceivedSpan] = field(default_factory=list)
    metrics: set[str] = field(default_factory=set)
    requests: int = 0
    span_count: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _spans(body: bytes) -> list[ReceivedSpan]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                        status=span.status.code,
                        service=service,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


def _metric_names(body: bytes) -> set[str]:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    return {
        metric.name
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= _MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length)
        store = self.server.store
        try:
            if self.path == "/v1/traces":
                received: Any = _spans(body)
            elif self.path == "/v1/metrics":
                received = _metric_names(body)
            else:
                self.send_error(404)
                return
        except Exception:  # a malformed body is the sender's problem: tell it so
            self.send_error(400)
            return
        with store.changed:
            store.requests += 1
            if self.path == "/v1/traces":
                store.span_count += len(received)
                if self.server.keep_spans:
                    store.spans.extend(received)
            else:
                store.metrics.update(received)
            store.changed.notify_all()
        # An empty ExportTraceServiceResponse is an empty protobuf message: zero bytes.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on stderr


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: _Store, *, keep_spans: bool, port: int) -> None:
        self.store = store
        self.keep_spans = keep_spans
        super().__init__(("127.0.0.1", port), _Handler)


class OTLPReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 (``port=0``: a free port), serving in a thread.

    ``keep_spans=False`` decodes and counts requests but keeps no spans (benchmarks).
    """

    def __init__(self, *, port: int = 0, keep_spans: bool = True) -> None:
        self._store = _Store()
        self._server = _Server(self._store, keep_spans=keep_spans, port=port)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter adds ``/v1/traces``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._store.changed:
            return list(self._store.spans)

    @property
    def metrics(self) -> set[str]:
        """The names of the metrics received so far."""
        with self._store.changed:
            return set(self._store.metrics)

    @property
    def span_count(self) -> int:
        """Spans received so far (counted even when ``keep_spans`` is off)."""
        with self._store.changed:
            return self._store.span_count

    @property
    def requests(self) -> int:
        with self._store.changed:
            return self._store.requests

    def wait_for_spans(
        self, done: Callable[[list[ReceivedSpan]], bool], *, timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """Block until ``done(spans)`` holds; ``TimeoutError`` (naming what came) if it does not."""
        deadline = time.monotonic() + timeout
        store = self._store
        with store.changed:
            while not done(list(store.spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted({s.name for s in store.spans})
                    raise TimeoutError(f"the spans received within {timeout:g}s do not suffice: {names}")
                store.changed.wait(left)
            return list(store.spans)

    def start(self) -> OTLPReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="stepweave-otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
