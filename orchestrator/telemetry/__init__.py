"""OpenTelemetry for stepweave: spans and metrics from the event stream (optional extra ``otel``).

The library uses only ``opentelemetry-api``, and only once an application has installed a
provider: without the package, or with the API alone, nothing is recorded and a run costs
what it did. ``stepweave`` commands install the SDK from the standard ``OTEL_*``
environment variables (``configure_from_env``). What is recorded: docs/telemetry.md.
"""

from __future__ import annotations

from .hook import enabled

__all__ = ["enabled"]
