"""Streaming dispatch: tasks start while the model is still writing the plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestrator import Event, Orchestrator, TaskStarted
from planners.llm import LLMPlanner, PlannerCallEnded
from planners.llm.testing import OpenAITestServer, ScriptedReply
from tools import Tool

from .conftest import Calls

FIVE: list[dict[str, Any]] = [
    {"id": "t1", "tool": "search", "args": {"query": "Paris population"}, "deps": []},
    {"id": "t2", "tool": "search", "args": {"query": "Rome population"}, "deps": []},
    {"id": "t3", "tool": "search", "args": {"query": "Berlin population"}, "deps": []},
    {"id": "t4", "tool": "count_words", "args": {"text": "$t1 and $t2"}, "deps": []},
    {"id": "t5", "tool": "add", "args": {"a": "$t4", "b": 1}, "deps": ["t3"]},
]


def one_chunk_per_task(tasks: list[dict[str, Any]]) -> list[str]:
    parts = [json.dumps(task) for task in tasks]
    chunks = ['{"tasks": [' + parts[0]]
    chunks += ["," + part for part in parts[1:]]
    chunks[-1] += "]}"
    return chunks


async def test_first_tool_starts_before_the_last_task_is_sent(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    server.queue(
        ScriptedReply(chunks=one_chunk_per_task(FIVE), chunk_delay=0.2),
        ScriptedReply.finish("Paris and Rome"),
    )
    events: list[Event] = []
    result = await planner.ask("Compare populations", orchestrator, on_event=events.append)

    sent = server.completions[0].chunk_times
    assert len(sent) == 5
    first_search = calls.started["search"][0]
    assert first_search < sent[-1], "the first tool must start before the last task is sent"
    assert first_search < sent[1], "in fact before the second task is sent"
    assert [t.id for t in result.plans[0].tasks] == ["t1", "t2", "t3", "t4", "t5"]
    # t4 counts "snippet about Paris population and snippet about Rome population": 9 words.
    assert result.run_result.outputs["t5"] == 10.0
    kinds = [type(e).__name__ for e in events]
    started_t1 = next(i for i, e in enumerate(events) if isinstance(e, TaskStarted) and e.task_id == "t1")
    plan_ended = next(i for i, e in enumerate(events) if isinstance(e, PlannerCallEnded))
    assert started_t1 < plan_ended, kinds


async def test_tiny_chunks_and_split_bytes_give_the_same_graph(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    tasks = [
        {"id": "t1", "tool": "search", "args": {"query": "crème brûlée ☕ {braces} [x]"}, "deps": []},
        {"id": "t2", "tool": "count_words", "args": {"text": 'quote \\" and $t1'}, "deps": []},
        {"id": "t3", "tool": "add", "args": {"a": "$t2", "b": 2.5}, "deps": ["t1"]},
    ]
    text = json.dumps({"tasks": tasks}, ensure_ascii=False)
    server.queue(
        ScriptedReply(content=text),
        ScriptedReply.finish("ok"),
        ScriptedReply(chunks=list(text), write_size=7),
        ScriptedReply.finish("ok"),
    )
    whole = await make_planner(server).ask("Request", orchestrator)
    tiny = await make_planner(server).ask("Request", orchestrator)
    assert len(server.completions[2].chunk_times) == len(text)
    dump = [t.model_dump() for t in whole.plans[0].tasks]
    assert [t.model_dump() for t in tiny.plans[0].tasks] == dump
    assert len(dump) == 3
    assert tiny.run_result.outputs == whole.run_result.outputs
    assert tiny.run_result.ok


async def test_without_streaming_the_plan_is_requested_whole(
    server: OpenAITestServer,
    make_planner: Callable[..., LLMPlanner],
    orchestrator: Orchestrator,
    calls: Calls,
) -> None:
    server.queue(ScriptedReply(chunks=one_chunk_per_task(FIVE), chunk_delay=0.05), ScriptedReply.finish("x"))
    result = await make_planner(server, stream=False).ask("Compare populations", orchestrator)
    request = server.completions[0]
    assert request.stream is False
    assert request.finished_at is not None
    assert min(calls.started["search"]) >= request.finished_at
    assert result.answer == "x"


async def test_plan_stream_feeds_a_run_directly(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply(chunks=one_chunk_per_task(FIVE), chunk_delay=0.01))
    result = await orchestrator.run(planner.plan_stream("Compare populations", orchestrator.tools))
    assert result.ok
    assert set(result.outputs) == {"t1", "t2", "t3", "t4", "t5"}


async def test_plan_only_returns_the_graph_without_running_it(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    server.queue(ScriptedReply.plan(FIVE))
    graph = await planner.plan("Compare populations", orchestrator.tools)
    assert list(graph.tasks) == ["t1", "t2", "t3", "t4", "t5"]
    assert graph["t5"].dependencies == {"t3", "t4"}
    assert graph["t4"].args == {"text": "${{ steps.t1.output }} and ${{ steps.t2.output }}"}
    assert calls.args == {}


async def test_plan_takes_the_tools_themselves_as_orchestrator_does(
    server: OpenAITestServer, planner: LLMPlanner, toolset: list[Tool]
) -> None:
    server.queue(ScriptedReply.plan(FIVE))
    graph = await planner.plan("Compare populations", toolset)  # a list, not a ToolRegistry
    assert list(graph.tasks) == ["t1", "t2", "t3", "t4", "t5"]
    offered = server.completions[0].messages[0]["content"]
    assert all(f"## {t.name}" in offered for t in toolset)
