"""The engine's one seam to telemetry: a run's event sink, wrapped only when someone listens.

``observe`` is called once per run. Without OpenTelemetry imported, or with only its API
(no SDK provider installed), it returns the sink unchanged, so a run that nobody traces
pays one dictionary lookup, not one per event. ``opentelemetry`` is never imported here:
an application that has not imported it cannot have installed a provider.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..events import Event
    from .spans import RunTelemetry

__all__ = ["active_run", "enabled", "observe"]

#: The API's stand-ins, installed until an SDK (or another implementation) sets a provider.
_STAND_INS = frozenset(
    {"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"}
)

#: Runs being traced now, by run id: the device dispatcher finds a task attempt's span here.
_active: dict[str, RunTelemetry] = {}


def _installed(module_name: str, getter: str) -> bool:
    module = sys.modules.get(module_name)
    if module is None:
        return False
    provider: Any = getattr(module, getter)()
    return type(provider).__name__ not in _STAND_INS


def enabled() -> bool:
    """True when a tracer or meter provider other than the API's no-op stand-in is installed."""
    return _installed("opentelemetry.trace", "get_tracer_provider") or _installed(
        "opentelemetry.metrics", "get_meter_provider"
    )


def active_run(run_id: str) -> RunTelemetry | None:
    """The telemetry of a run being traced now, or ``None``."""
    return _active.get(run_id) if _active else None


def observe(emit: Callable[[Event], None], run_id: str) -> Callable[[Event], None]:
    """``emit``, or ``emit`` followed by the run's spans and metrics when telemetry is on."""
    if not enabled():
        return emit
    telemetry = _telemetry(run_id)
    handlers = telemetry.handlers

    def emit_observed(event: Event) -> None:
        emit(event)
        try:
            handler = handlers.get(type(event))  # telemetry.on_event, one call less per event
            if handler is not None:
                handler(event)
        except Exception:  # telemetry must never fail a run
            import logging  # not at the top: the CLI's start-up does without it

            logging.getLogger("stepweave.telemetry").exception(
                "telemetry failed on %s of run %s", event.kind, run_id
            )

    return emit_observed


def _telemetry(run_id: str) -> RunTelemetry:
    """The run's listener: one record per task attempt when the CLI's shipping providers are
    installed (:mod:`.shipped`), spans through the API otherwise."""
    from opentelemetry import trace

    from .light import ShippingTracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, ShippingTracerProvider):
        from .shipped import ShippedRunTelemetry

        return ShippedRunTelemetry(run_id, _active, provider)
    from .spans import RunTelemetry

    return RunTelemetry(run_id, _active)
