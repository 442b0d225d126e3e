"""Usage accounting and the event stream of an ask."""

from __future__ import annotations

import json

import pytest

from orchestrator import Event, Orchestrator, RunEnded, RunStarted, TaskAdded
from planners.llm import (
    AskEnded,
    JoinerDecided,
    LLMPlanner,
    PlannerCallEnded,
    PlannerCallStarted,
    Pricing,
)
from planners.llm.testing import OpenAITestServer, ScriptedReply, split_tokens

PLAN = {"tasks": [{"id": "t1", "tool": "search", "args": {"query": "a"}, "deps": []}]}


async def test_tokens_and_times_are_counted_per_call_and_per_ask(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    plan = ScriptedReply.json(PLAN, chunk_delay=0.01)
    server.queue(plan, ScriptedReply.finish("done"))
    result = await planner.ask("Look it up", orchestrator)

    plan_call, join_call = result.usage.calls
    assert plan_call.kind == "plan" and join_call.kind == "join"
    assert plan_call.reported and join_call.reported
    assert plan_call.completion_tokens == len(split_tokens(plan.content))
    assert plan_call.prompt_tokens == len(json.dumps(server.completions[0].messages)) // 4
    assert plan_call.seconds >= 0.01 * (plan_call.completion_tokens - 1)
    assert plan_call.first_token_seconds is not None
    assert plan_call.first_token_seconds < plan_call.seconds
    assert result.usage.total_tokens == sum(c.total_tokens for c in (plan_call, join_call))
    assert result.duration >= result.usage.seconds
    assert result.duration >= result.run_result.duration
    assert planner.usage.total_tokens == result.usage.total_tokens  # the planner's running total
    # The engine's RunResult carries the same account (and serialises it).
    assert result.run_result.usage == result.usage.to_dict()
    assert result.run_result.to_dict()["usage"]["total_tokens"] == result.usage.total_tokens


async def test_cost_follows_the_pricing(
    server: OpenAITestServer, make_planner: object, orchestrator: Orchestrator
) -> None:
    assert callable(make_planner)
    planner = make_planner(server, pricing=Pricing(prompt_per_million=1.0, completion_per_million=4.0))
    server.queue(ScriptedReply.json(PLAN), ScriptedReply.finish("done"))
    usage = (await planner.ask("Look it up", orchestrator)).usage
    assert usage.cost == (usage.prompt_tokens * 1.0 + usage.completion_tokens * 4.0) / 1_000_000
    assert usage.by_kind("join").total_tokens == usage.calls[1].total_tokens


async def test_ask_events_show_the_dag_forming_and_end_with_the_result(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN), ScriptedReply.finish("done"))
    events: list[Event] = [e async for e in planner.ask_events("Look it up", orchestrator)]

    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted
    assert kinds[-1] is AskEnded and kinds[-2] is RunEnded
    assert kinds.index(PlannerCallStarted) < kinds.index(TaskAdded) < kinds.index(PlannerCallEnded)
    assert kinds.index(JoinerDecided) < kinds.index(RunEnded)
    assert {e.run_id for e in events} == {events[0].run_id}
    ended = events[-1]
    assert isinstance(ended, AskEnded) and ended.result.answer == "done"
    lines = [json.dumps(e.to_dict()) for e in events]  # the CLI's --json stream
    assert json.loads(lines[-1])["event"] == "ask_ended"
    assert json.loads(lines[-1])["result"]["usage"]["total_tokens"] > 0


async def test_an_async_event_handler_is_awaited(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN), ScriptedReply.finish("done"))
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.kind)

    await planner.ask("Look it up", orchestrator, on_event=handler)
    assert seen[0] == "run_started" and seen[-1] == "ask_ended"


async def test_a_failing_event_handler_ends_the_run(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN, chunk_delay=0.01), ScriptedReply.finish("done"))

    def handler(event: Event) -> None:
        if isinstance(event, TaskAdded):
            raise RuntimeError("display crashed")

    with pytest.raises(RuntimeError, match="display crashed"):
        await planner.ask("Look it up", orchestrator, on_event=handler)
    assert len(server.completions) == 1, "no joiner call after the ask was abandoned"
