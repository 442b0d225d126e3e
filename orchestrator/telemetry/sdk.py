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

Spans and metric points are made by light providers (:mod:`.light`) and exported by a
separate process running the SDK (:mod:`.shipping`, :mod:`.exportd`): encoding and sending
OTLP is off the traced process's core. At exit the traced process waits for that export to
finish, so a short ``stepweave run`` loses nothing. ``OTEL_TRACES_SAMPLER`` (and ``_ARG``)
choose the sampler, as with the SDK.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["TRIGGERS", "configure_from_env", "export_side", "wanted"]

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
    """Check the configuration here (one line on stderr if it is wrong), then start the
    export process and install the providers that feed it (:mod:`.light`)."""
    span_names = _exporter_names(env, "OTEL_TRACES_EXPORTER")
    metric_names = _exporter_names(env, "OTEL_METRICS_EXPORTER")
    if not span_names and not metric_names:
        return False
    for signal, names in (("TRACES", span_names), ("METRICS", metric_names)):
        if "otlp" in names:
            _check_protocol(env, signal)
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        raise ImportError("the OpenTelemetry SDK is not installed (pip install 'stepweave[otel]')")
    from opentelemetry import metrics, trace

    from .light import ShippingMeterProvider, ShippingTracerProvider, sampler_from_env
    from .shipping import Shipper

    sampler = sampler_from_env(env.get("OTEL_TRACES_SAMPLER", ""), env.get("OTEL_TRACES_SAMPLER_ARG", ""))
    shipper = Shipper(env)
    if span_names:
        trace.set_tracer_provider(
            ShippingTracerProvider(
                shipper.add, sampler=sampler, flush=shipper.force_flush, shutdown=shipper.shutdown
            )
        )
    if metric_names:
        metrics.set_meter_provider(ShippingMeterProvider(shipper.add))
    return True


def export_side(env: Mapping[str, str]) -> tuple[list[Any], Any, Any]:
    """The export process's SDK parts, as the variables say: span exporters, a
    ``MeterProvider`` with its readers (``None`` without metrics) and the resource."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, Any] = {}
    if not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = "stepweave"
    resource = Resource.create(attributes)
    span_exporters = [_span_exporter(name, env) for name in _exporter_names(env, "OTEL_TRACES_EXPORTER")]
    readers = [_metric_reader(name, env) for name in _exporter_names(env, "OTEL_METRICS_EXPORTER")]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    return span_exporters, meter_provider, resource


def _check_protocol(env: Mapping[str, str], signal: str) -> None:
    protocol = _protocol(env, signal)
    if protocol == "grpc":
        if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is None:
            raise ImportError("OTLP over gRPC needs opentelemetry-exporter-otlp-proto-grpc")
    elif protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc")


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
