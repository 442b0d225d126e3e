"""What real local servers do to a call, scripted: cut-off streams, hangs, HTML errors, no usage.

Each test is one defect seen against llama.cpp's server (issue 12): the planner must
treat the transport as the transport (retry it, never blame the model), fail a hung
server in seconds naming it, and count what it spent honestly.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable

import pytest

from orchestrator import Event, Orchestrator, PlannerError
from planners.llm import LLMPlanner, PlannerRetrying
from planners.llm.testing import OpenAITestServer, ScriptedReply
from tools import Tool

from .conftest import Calls

PLAN = {"tasks": [{"id": "t1", "tool": "search", "args": {"query": "a"}, "deps": []}]}


async def test_a_stream_ended_without_finish_reason_is_sent_again_not_repaired(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    text = json.dumps(PLAN)
    events: list[Event] = []
    server.queue(
        ScriptedReply(content=text[:20], finish_reason=None),  # llama.cpp, interrupted
        ScriptedReply(content=text),
        ScriptedReply.finish("done"),
    )
    result = await planner.ask("Look it up", orchestrator, on_event=events.append)
    assert result.answer == "done"
    first, again = server.completions[:2]
    assert again.messages == first.messages  # not a repair: nothing said to the model
    assert "ended early" not in again.text and "finish_reason" not in again.text
    assert result.plans[0].repairs == 0 and calls.count("search") == 1
    assert [e for e in events if isinstance(e, PlannerRetrying)]
    cut = result.usage.calls[0]
    assert cut.transport_error is not None and "finish_reason" in cut.transport_error


async def test_a_joiner_stream_cut_off_is_asked_again_not_repaired(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    decision = json.dumps({"thought": "ok", "action": "finish", "answer": "done", "reason": ""})
    events: list[Event] = []
    server.queue(
        ScriptedReply.json(PLAN),
        ScriptedReply(content=decision[:25], finish_reason=None),  # llama.cpp, interrupted
        ScriptedReply(content=decision),
    )
    result = await planner.ask("Look it up", orchestrator, on_event=events.append)
    assert result.answer == "done"
    cut, again = server.completions[1:]
    assert again.messages == cut.messages, "the same request, nothing said to the model"
    assert [e.call for e in events if isinstance(e, PlannerRetrying)] == ["join"]
    assert [c.kind for c in result.usage.calls] == ["plan", "join", "join"]
    assert result.usage.calls[1].transport_error is not None


async def test_a_server_that_keeps_cutting_streams_off_fails_saying_so(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(*[ScriptedReply(content='{"tasks": [', finish_reason=None)] * 3)
    with pytest.raises(PlannerError, match=r"ended without a finish_reason .*, 2 times: giving up"):
        await make_planner(server, api_retries=1).ask("Look it up", orchestrator)
    assert len(server.completions) == 2


async def test_a_hung_server_fails_at_the_first_token_timeout_naming_it(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN, first_delay=3600))
    planner = make_planner(server, first_token_timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(PlannerError) as caught:
        await planner.ask("Look it up", orchestrator)
    assert time.perf_counter() - started < 10
    message = str(caught.value)
    assert server.base_url in message and "sent nothing for 0.3s" in message
    assert len(server.completions) == 1  # a hang is not retried


async def test_a_stream_that_stalls_fails_at_the_idle_timeout(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN, stall_after=3))
    with pytest.raises(PlannerError, match=r"stalled mid-answer for 0.3s \(idle_timeout\)"):
        await make_planner(server, idle_timeout=0.3).ask("Look it up", orchestrator)


FAILING_PLAN = {"tasks": [{"id": "t1", "tool": "broken", "args": {"query": "a"}, "deps": []}]}


@pytest.mark.parametrize(
    ("hung_call", "before"),
    [
        ("join", [ScriptedReply.json(PLAN)]),
        ("replan", [ScriptedReply.json(PLAN), ScriptedReply.replan("look again")]),
    ],
)
async def test_a_server_that_hangs_after_the_plan_fails_at_the_first_token_timeout(
    server: OpenAITestServer,
    make_planner: Callable[..., LLMPlanner],
    orchestrator: Orchestrator,
    hung_call: str,
    before: list[ScriptedReply],
) -> None:
    # Joiner and replan answers are parsed whole, but read as streams: sent whole, a hung
    # call would be bounded only by the 120 s request timeout, times the retries.
    server.queue(*before, ScriptedReply.finish("late", first_delay=3600))
    planner = make_planner(server, first_token_timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(PlannerError, match=rf"the {hung_call} call to .* sent nothing for 0.3s"):
        await planner.ask("Look it up", orchestrator)
    assert time.perf_counter() - started < 10
    assert server.completions[-1].stream is True


async def test_a_recovery_call_that_hangs_fails_at_the_first_token_timeout(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], toolset: list[Tool]
) -> None:
    planner = make_planner(server, first_token_timeout=0.3)
    orchestrator = Orchestrator(toolset, failure_policy="replan", replanner=planner.replanner)
    server.queue(
        ScriptedReply.json(FAILING_PLAN),
        ScriptedReply.json(PLAN, first_delay=3600),  # asked by the recovery hook when t1 fails
        ScriptedReply.finish("the mirror is down"),
    )
    started = time.perf_counter()
    result = await planner.ask("Look it up", orchestrator)
    assert time.perf_counter() - started < 10
    assert server.completions[1].stream is True
    error = result.run_result.error or ""
    assert "replanning failed: the replan call to" in error and "sent nothing for 0.3s" in error
    assert result.answer == "the mirror is down", "the joiner still saw the run and answered"


async def test_without_streaming_every_call_is_read_whole(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN), ScriptedReply.finish("done"))
    result = await make_planner(server, stream=False).ask("Look it up", orchestrator)
    assert result.answer == "done"
    assert [c.stream for c in server.completions] == [False, False]


async def test_calls_to_one_server_run_one_at_a_time_by_default(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.responder = lambda _: ScriptedReply.json(PLAN, chunk_delay=0.01)
    planner = make_planner(server)
    await asyncio.gather(*(planner.plan(f"Look up {n}", orchestrator.tools) for n in range(3)))
    spans = sorted((r.received_at, r.finished_at or 0.0) for r in server.completions)
    assert len(spans) == 3
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended  # each request only after the previous answer ended


async def test_max_parallel_calls_lets_calls_overlap(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    gate = asyncio.Event()
    seen: list[int] = []

    def reply(_: object) -> ScriptedReply:
        seen.append(1)
        if len(seen) == 2:
            gate.set()
        return ScriptedReply.json(PLAN)

    server.responder = reply
    planner = make_planner(server, max_parallel_calls=2)
    await asyncio.gather(*(planner.plan(f"Look up {n}", orchestrator.tools) for n in range(2)))
    assert gate.is_set()
    with pytest.raises(ValueError, match="max_parallel_calls"):
        make_planner(server, max_parallel_calls=0)


async def test_every_call_kind_sends_its_max_tokens(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply(content="no plan"), ScriptedReply.json(PLAN), ScriptedReply.finish("ok"))
    await make_planner(server).ask("Look it up", orchestrator)
    assert [r.body.get("max_tokens") for r in server.completions] == [1536, 1536, 1024]
    server.queue(ScriptedReply.json(PLAN), ScriptedReply.finish("ok"))
    await make_planner(server, max_tokens={"plan": 300, "join": 100}).ask("Look it up", orchestrator)
    assert [r.body.get("max_tokens") for r in server.completions[3:]] == [300, 100]


async def test_an_answer_cut_at_max_tokens_is_repaired_saying_so(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply(content=json.dumps(PLAN)[:30], finish_reason="length"),
        ScriptedReply.json(PLAN),
        ScriptedReply.finish("ok"),
    )
    await planner.ask("Look it up", orchestrator)
    assert "hit the length limit (1536 tokens)" in server.completions[1].messages[-1]["content"]


async def test_a_context_overflow_is_reported_with_its_numbers(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.failure(400, "Requested tokens (5120) exceed context window of 4096"))
    with pytest.raises(PlannerError) as caught:
        await planner.ask("Look it up", orchestrator)
    message = str(caught.value)
    assert "5120" in message and "4096" in message and "max_tokens (1536)" in message


async def test_unreported_usage_is_unknown_not_zero(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.json(PLAN, usage=False), ScriptedReply.finish("ok", usage=False))
    result = await planner.ask("Look it up", orchestrator)
    assert result.usage.unknown_calls == 2
    assert result.usage.describe_tokens().startswith("tokens unknown")
    assert result.usage.to_dict()["calls"][0]["prompt_tokens"] is None


async def test_retries_are_counted_even_when_the_call_fails_in_the_end(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(*[ScriptedReply.failure(503, "overloaded")] * 4)
    planner = make_planner(server, api_retries=3)
    with pytest.raises(PlannerError):
        await planner.ask("Look it up", orchestrator)
    assert len(server.completions) == 4
    assert [c.retries for c in planner.usage.calls] == [3]


@pytest.mark.parametrize("status", [400, 403, 413, 501])
async def test_statuses_no_retry_can_fix_fail_at_once(
    status: int, server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(*[ScriptedReply.failure(status, "nope")] * 3)
    with pytest.raises(PlannerError, match=f"HTTP {status}"):
        await planner.ask("Look it up", orchestrator)
    assert len(server.completions) == 1


async def test_a_bad_url_scheme_fails_at_once(orchestrator: Orchestrator) -> None:
    from planners.llm import ServerMemory

    async with LLMPlanner(
        "m", base_url="htp://127.0.0.1:1/v1", api_key="k", retry_wait=5, server_memory=ServerMemory()
    ) as planner:
        started = time.perf_counter()
        with pytest.raises(PlannerError, match="URL is not usable"):
            await planner.ask("Look it up", orchestrator)
        assert time.perf_counter() - started < 4  # one backoff wait would be 5 s


async def test_an_html_error_page_is_one_line(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head>\n<body>\n<h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"
    server.queue(ScriptedReply.html_error(404, page))
    with pytest.raises(PlannerError) as caught:
        await planner.ask("Look it up", orchestrator)
    message = str(caught.value)
    assert "\n" not in message and "<" not in message and "502 Bad Gateway" in message
