"""The OpenTelemetry SDK for ``stepweave`` commands, configured from the standard variables.

Only the CLI calls ``configure_from_env``; a library user installs their own SDK. Nothing
is imported unless one of the variables in ``TRIGGERS`` is set (start-up time is a
feature), and ``OTEL_SDK_DISABLED=true`` turns it all off. What it reads:

- ``OTEL_TRACES_EXPORTER``: ``otlp`` (the default), ``console`` or ``none``;
- ``OTEL_METRICS_EXPORTER``: ``otlp`` (the default), ``console`` or ``none``;
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (and the ``_TRACES_``/``_METRICS_`` variants):
  ``http/protobuf`` (the default; installed with the ``otel`` extra) or ``grpc`` (needs
  ``opentelemetry-exporter-otlp-proto-grpc``);
- ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS`` and the rest of the
  exporter's own variables, which the exporters read themselves;
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the service is ``stepweave``
  unless named).

Spans go through a ``BatchSpanProcessor``; the providers flush and shut down when the
process exits (the SDK registers that itself), so a short ``stepweave run`` loses nothing.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["TRIGGERS", "configure_from_env", "wanted"]

#: Any of these, set and non-empty, asks for telemetry.
TRIGGERS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
)


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for telemetry (and does not disable the SDK)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in TRIGGERS)


def configure_from_env(env: Mapping[str, str] = os.environ) -> bool:
    """Install tracer and meter providers as the ``OTEL_*`` variables say; True if installed.

    A misconfiguration (an unknown exporter, the gRPC exporter not installed, the SDK
    missing) is one line on stderr, and the command runs untraced: telemetry never stops
    the work it observes.
    """
    if not wanted(env):
        return False
    try:
        return _configure(env)
    except (ImportError, ValueError) as exc:
        print(f"stepweave: telemetry is off: {exc}", file=sys.stderr)
        return False


def _protocol(env: Mapping[str, str], signal: str) -> str:
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "").strip()
    return specific or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "http/protobuf"


def _exporter_names(env: Mapping[str, str], variable: str) -> list[str]:
    names = [n.strip().lower() for n in env.get(variable, "otlp").split(",") if n.strip()]
    unknown = [n for n in names if n not in ("otlp", "console", "none")]
    if unknown:
        raise ValueError(f"{variable}={env[variable]!r}: stepweave knows otlp, console and none")
    return [] if "none" in names else names


def _configure(env: Mapping[str, str]) -> bool:
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.resources import Resource
    except ImportError:
        raise ImportError("the OpenTelemetry SDK is not installed (pip install 'stepweave[otel]')") from None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    attributes: dict[str, Any] = {}
    if not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = "stepweave"
    resource = Resource.create(attributes)
    span_exporters = [_span_exporter(name, env) for name in _exporter_names(env, "OTEL_TRACES_EXPORTER")]
    readers = [_metric_reader(name, env) for name in _exporter_names(env, "OTEL_METRICS_EXPORTER")]
    if span_exporters:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider = TracerProvider(resource=resource)
        for exporter in span_exporters:
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
    if readers:
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
    return bool(span_exporters or readers)


def _grpc(module: str) -> Any:
    """A module of the gRPC exporter, which the ``otel`` extra does not install."""
    try:
        return importlib.import_module(f"opentelemetry.exporter.otlp.proto.grpc.{module}")
    except ImportError:
        raise ImportError("OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc") from None


def _span_exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(out=sys.stderr)  # stdout is the command's own output
    protocol = _protocol(env, "TRACES")
    if protocol == "grpc":
        return _grpc("trace_exporter").OTLPSpanExporter()
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter()


def _metric_reader(name: str, env: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr))
    protocol = _protocol(env, "METRICS")
    if protocol == "grpc":
        return PeriodicExportingMetricReader(_grpc("metric_exporter").OTLPMetricExporter())
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    return PeriodicExportingMetricReader(HttpMetricExporter())
