"""One span per model call of the LLM planner, in the GenAI semantic conventions.

A ``chat {model}`` span (kind CLIENT) with ``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.provider.name`` (and the older ``gen_ai.system``),
``server.address``/``server.port``, token usage when the server reported it, and the
``gen_ai.client.token.usage`` / ``gen_ai.client.operation.duration`` metrics. The planner
wraps its answer stream with ``traced_model_call``; when telemetry is off it gets its own
stream back, untouched.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, Protocol
from urllib.parse import urlsplit

from .hook import enabled
from .names import (
    ERROR_TYPE,
    GEN_AI_INPUT_TOKENS,
    GEN_AI_OPERATION,
    GEN_AI_OUTPUT_TOKENS,
    GEN_AI_PROVIDER,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_SYSTEM,
    SCOPE,
)

__all__ = ["ModelCall", "traced_model_call"]

#: The API the planner speaks (also to vLLM, Ollama or llama.cpp: ``server.address`` says which).
_PROVIDER = "openai"


class ModelCall(Protocol):
    """What the span reads from a planner's call once it has ended."""

    @property
    def usage(self) -> Any: ...  # planners.llm.CallUsage | None

    @property
    def max_tokens(self) -> int | None: ...


def traced_model_call(
    stream: AsyncGenerator[str, None], call: ModelCall, *, model: str, server: str, purpose: str
) -> AsyncGenerator[str, None]:
    """``stream`` (the answer's text pieces) inside a GenAI ``chat`` span."""
    if not enabled():
        return stream
    return _traced(stream, call, model, server, purpose)


async def _traced(
    stream: AsyncGenerator[str, None], call: ModelCall, model: str, server: str, purpose: str
) -> AsyncGenerator[str, None]:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    address = urlsplit(server)
    attributes: dict[str, Any] = {
        GEN_AI_OPERATION: "chat",
        GEN_AI_REQUEST_MODEL: model,
        GEN_AI_PROVIDER: _PROVIDER,
        GEN_AI_SYSTEM: _PROVIDER,
        "stepweave.planner.call": purpose,
    }
    if address.hostname:
        attributes["server.address"] = address.hostname
    if address.port:
        attributes["server.port"] = address.port
    if call.max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = call.max_tokens
    span = trace.get_tracer(SCOPE).start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)
    started = time.perf_counter()
    error: str | None = None
    try:
        async with aclosing(stream):
            async for piece in stream:
                yield piece
    except GeneratorExit:
        raise  # the reader stopped early: not an error of the call
    except BaseException as exc:
        error = type(exc).__name__
        span.set_status(Status(StatusCode.ERROR, str(exc) or error))
        raise
    finally:
        usage = call.usage
        meter = metrics.get_meter(SCOPE)
        common = {k: attributes[k] for k in (GEN_AI_OPERATION, GEN_AI_PROVIDER, GEN_AI_REQUEST_MODEL)}
        if usage is not None:
            if usage.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", [usage.finish_reason])
            if usage.transport_error and error is None:
                error = "TransportError"
                span.set_status(Status(StatusCode.ERROR, usage.transport_error))
            if usage.reported:
                span.set_attribute(GEN_AI_INPUT_TOKENS, usage.prompt_tokens)
                span.set_attribute(GEN_AI_OUTPUT_TOKENS, usage.completion_tokens)
                tokens = meter.create_histogram(
                    "gen_ai.client.token.usage", unit="{token}", description="Tokens used by model calls"
                )
                tokens.record(usage.prompt_tokens, {**common, "gen_ai.token.type": "input"})
                tokens.record(usage.completion_tokens, {**common, "gen_ai.token.type": "output"})
            if usage.retries:
                span.set_attribute("stepweave.planner.retries", usage.retries)
        if error is not None:
            span.set_attribute(ERROR_TYPE, error)
            common[ERROR_TYPE] = error
        meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of model calls"
        ).record(time.perf_counter() - started, common)
        span.end()
