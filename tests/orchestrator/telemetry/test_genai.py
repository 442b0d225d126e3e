"""Each model call of the LLM planner is a GenAI ``chat`` span, under the run it plans."""

from __future__ import annotations

from orchestrator import Orchestrator
from orchestrator.telemetry.hook import observe
from planners.llm import LLMPlanner
from planners.llm.testing import OpenAITestServer, ScriptedReply
from planners.llm.usage import CallUsage
from tools import tool

from .conftest import Otel

MODEL = "scripted-model"


@tool(read_only=True)
async def lookup(term: str) -> str:
    """Look a term up."""
    return term.upper()


async def test_model_calls_are_genai_spans_in_the_runs_trace(otel: Otel) -> None:
    async with OpenAITestServer(model=MODEL) as server:
        server.queue(ScriptedReply.plan([{"id": "t1", "tool": "lookup", "args": {"term": "otel"}}]))
        server.queue(ScriptedReply.finish("OTEL"))
        planner = LLMPlanner(MODEL, base_url=server.base_url, api_key="sk-test", retry_wait=0.01)
        try:
            result = await planner.ask("look up otel", Orchestrator(tools=[lookup]))
        finally:
            await planner.aclose()
    assert result.answer == "OTEL"

    calls = otel.named(f"chat {MODEL}")
    assert len(calls) == 2, [s.name for s in otel.finished()]
    usage: list[CallUsage] = list(result.usage.calls)
    for span, call_usage in zip(sorted(calls, key=lambda s: s.start_time or 0), usage, strict=True):
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == MODEL
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.system"] == "openai"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["stepweave.planner.call"] == call_usage.kind
        assert call_usage.reported and call_usage.prompt_tokens > 0 and call_usage.completion_tokens > 0
        assert attributes["gen_ai.usage.input_tokens"] == call_usage.prompt_tokens
        assert attributes["gen_ai.usage.output_tokens"] == call_usage.completion_tokens
        assert span.status.is_ok

    # The plan call streams inside the run, so it is a child of the run's span.
    (run,) = otel.named("run")
    plan = next(s for s in calls if (s.attributes or {})["stepweave.planner.call"] == "plan")
    assert plan.parent is not None and plan.parent.span_id == run.context.span_id
    (attempt,) = otel.named("task lookup")
    assert attempt.context.trace_id == run.context.trace_id

    tokens = otel.points("gen_ai.client.token.usage")
    total = sum(u.prompt_tokens + u.completion_tokens for u in usage)
    assert sum(getattr(p, "sum", 0) for p in tokens) == total


async def test_a_failed_model_call_is_an_error_span(otel: Otel) -> None:
    async with OpenAITestServer(model=MODEL) as server:
        server.queue(ScriptedReply.failure(400, "model does not exist"))
        planner = LLMPlanner(MODEL, base_url=server.base_url, api_key="sk-test", api_retries=0)
        try:
            await planner.plan("anything", Orchestrator(tools=[lookup]).tools)
        except Exception as exc:
            assert "model does not exist" in str(exc)
        else:
            raise AssertionError("the plan call should have failed")
        finally:
            await planner.aclose()
    (span,) = otel.named(f"chat {MODEL}")
    assert not span.status.is_ok
    assert (span.attributes or {})["error.type"] == "PlannerError"


def test_without_a_provider_the_sink_is_returned_unchanged() -> None:
    def sink(event: object) -> None:
        pass

    assert observe(sink, "run-1") is sink
