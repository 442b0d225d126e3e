"""API errors: transient ones are retried with backoff, the rest fail at once and say why."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from orchestrator import Event, Orchestrator, PlannerError
from planners.llm import LLMPlanner, PlannerRetrying, ServerMemory
from planners.llm.testing import OpenAITestServer, ScriptedReply

PLAN = ScriptedReply.plan([{"id": "t1", "tool": "search", "args": {"query": "a"}}])


async def test_rate_limit_is_retried_after_the_servers_retry_after(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply.failure(429, "Rate limit reached for requests", {"retry-after": "0.2"}),
        PLAN,
        ScriptedReply.finish("done"),
    )
    events: list[Event] = []
    started = time.perf_counter()
    result = await planner.ask("Look it up", orchestrator, on_event=events.append)

    assert result.answer == "done"
    assert [r.status for r in server.completions] == [429, 200, 200]
    assert server.completions[1].received_at - server.completions[0].received_at >= 0.19
    assert time.perf_counter() - started >= 0.2
    assert result.usage.calls[0].retries == 1
    retrying = [e for e in events if isinstance(e, PlannerRetrying)]
    assert len(retrying) == 1 and retrying[0].delay == pytest.approx(0.2)
    assert "Rate limit reached" in retrying[0].error


async def test_server_errors_are_retried(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply.failure(503, "overloaded"),
        ScriptedReply.failure(500, "internal error"),
        PLAN,
        ScriptedReply.failure(502, "bad gateway"),
        ScriptedReply.finish("done"),
    )
    result = await planner.ask("Look it up", orchestrator)
    assert result.answer == "done"
    assert [c.retries for c in result.usage.calls] == [2, 1]


async def test_retries_are_bounded(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(*[ScriptedReply.failure(503, "overloaded")] * 5)
    with pytest.raises(PlannerError, match=r"HTTP 503 Service Unavailable: overloaded"):
        await make_planner(server, api_retries=2).ask("Look it up", orchestrator)
    assert len(server.completions) == 3


async def test_a_wrong_api_key_fails_at_once_with_the_servers_message(
    make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    async with OpenAITestServer(api_key="sk-the-right-one") as server:
        planner = make_planner(server)
        started = time.perf_counter()
        with pytest.raises(PlannerError) as caught:
            await planner.ask("Look it up", orchestrator)
        assert time.perf_counter() - started < 5.0  # no backoff wait (the count below proves no retry)
        assert len(server.completions) == 1
    message = str(caught.value)
    assert "HTTP 401 Unauthorized" in message
    assert "Incorrect API key provided" in message
    assert "check OPENAI_API_KEY" in message


async def test_a_bad_request_fails_at_once(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.failure(400, "model 'test-model' does not support temperature"))
    with pytest.raises(PlannerError, match="HTTP 400 Bad Request: model 'test-model' does not support"):
        await planner.ask("Look it up", orchestrator)
    assert len(server.completions) == 1


async def test_an_unknown_model_hints_at_the_configuration(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.failure(404, "The model `test-model` does not exist"))
    with pytest.raises(PlannerError, match="STEPWEAVE_MODEL"):
        await planner.ask("Look it up", orchestrator)


async def test_an_unreachable_server_fails_after_the_retries(orchestrator: Orchestrator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    async with LLMPlanner(
        "test-model",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key="sk-test",
        api_retries=1,
        retry_wait=0.01,
        server_memory=ServerMemory(),
    ) as planner:
        with pytest.raises(PlannerError, match="could not connect after 2 attempts"):
            await planner.ask("Look it up", orchestrator)


async def test_a_server_that_does_not_answer_times_out(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(*[ScriptedReply.finish("late", first_delay=5)] * 2)
    planner = make_planner(server, stream=False, timeout=0.2, api_retries=1)
    started = time.perf_counter()
    with pytest.raises(PlannerError, match="timed out after 2 attempts"):
        await planner.ask("Look it up", orchestrator)
    assert time.perf_counter() - started < 3
