"""Garbage from the model: repaired with the problem fed back, or a PlannerError naming it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from orchestrator import Orchestrator, PlannerError
from planners.llm import LLMPlanner
from planners.llm.testing import OpenAITestServer, ScriptedReply

from .conftest import Calls

GOOD = {"tasks": [{"id": "t1", "tool": "search", "args": {"query": "a"}, "deps": []}]}


def task(
    task_id: str, tool: str = "search", deps: list[str] | None = None, **args: object
) -> dict[str, object]:
    return {"id": task_id, "tool": tool, "args": args, "deps": deps or []}


GARBAGE = {
    "truncated JSON": (
        '{"tasks": [{"id": "t1", "tool": "search", "args": {"query": "a"}, "deps": []}, {"id": "t2", "to',
        "ended early",
    ),
    "no JSON at all": ("I would search the web for that.", "no JSON found"),
    "unknown tool": (json.dumps({"tasks": [task("t1", "websearch", query="a")]}), "unknown tool 'websearch'"),
    "wrong argument type": (
        json.dumps({"tasks": [task("t1", "add", a="ten", b=2)]}),
        "argument 'a'",
    ),
    "missing argument": (json.dumps({"tasks": [task("t1", "add", a=1)]}), "missing required argument 'b'"),
    "cycle": (
        json.dumps({"tasks": [task("t1", query="$t2"), task("t2", query="$t1")]}),
        "cycle: ",
    ),
    "dangling reference": (
        json.dumps({"tasks": [task("t1", query="$t7")]}),
        "uses 't7', which does not exist",
    ),
    "empty plan": ('{"tasks": []}', "the plan has no tasks"),
    "bad task id": (json.dumps({"tasks": [task("first", query="a")]}), "tasks[0]: id"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
async def test_garbage_is_repaired_with_the_problem_fed_back(
    case: str, server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    bad, problem = GARBAGE[case]
    server.queue(ScriptedReply(content=bad), ScriptedReply.json(GOOD), ScriptedReply.finish("done"))
    result = await planner.ask("Look it up", orchestrator)

    assert result.answer == "done"
    first, repair, _ = server.completions
    assert problem not in first.text
    assert problem in repair.messages[-1]["content"], repair.messages[-1]["content"]
    assert repair.messages[-2] == {"role": "assistant", "content": bad}
    assert result.plans[0].repairs == 1
    assert [c.kind for c in result.usage.calls] == ["plan", "repair", "join"]
    assert calls.count("search") == 1, "a task started from a valid prefix must not run again"


async def test_prose_around_the_json_needs_no_repair(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    wrapped = f"Sure! Here is the plan:\n```json\n{json.dumps(GOOD)}\n```\nLet me know {{if}} you need more."
    server.queue(ScriptedReply(content=wrapped), ScriptedReply.finish("done"))
    result = await planner.ask("Look it up", orchestrator)
    assert result.answer == "done"
    assert len(server.completions) == 2


async def test_the_repair_prompt_lists_started_tasks_and_a_repeat_does_not_rerun(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    first = {"tasks": [task("t1", query="a"), task("t2", "word_count", text="$t1")]}
    again = {"tasks": [task("t1", query="a"), task("t2", "count_words", text="$t1")]}
    server.queue(ScriptedReply.json(first), ScriptedReply.json(again), ScriptedReply.finish("done"))
    result = await planner.ask("Look it up", orchestrator)

    repair = server.completions[1].messages[-1]["content"]
    assert "already started" in repair and "t1" in repair
    assert "unknown tool 'word_count'; known tools: add, broken, count_words, search" in repair
    assert calls.count("search") == 1
    assert result.run_result.outputs["t2"] == 3
    assert [t.id for t in result.plans[0].tasks] == ["t1", "t2"]


async def test_a_repair_may_not_reuse_a_started_id_for_a_different_task(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    first = (
        '{"tasks": [{"id": "t1", "tool": "search", "args": {"query": "a"}}, {"id": "t2", "tool": "nope"}]}'
    )
    clash = {"tasks": [task("t1", query="different")]}
    fixed = {"tasks": [task("t2", query="b")]}
    server.queue(
        ScriptedReply(content=first),
        ScriptedReply.json(clash),
        ScriptedReply.json(fixed),
        ScriptedReply.finish("done"),
    )
    result = await planner.ask("Look it up", orchestrator)
    assert "already used by an earlier task" in server.completions[2].messages[-1]["content"]
    assert [a["query"] for a in calls.args["search"]] == ["a", "b"]
    assert result.plans[0].repairs == 2


@pytest.mark.parametrize("case", ["unknown tool", "cycle", "empty plan", "truncated JSON"])
async def test_unrepairable_garbage_fails_with_a_planner_error_naming_the_problem(
    case: str, server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    bad, problem = GARBAGE[case]
    server.queue(*[ScriptedReply(content=bad)] * 3)
    planner = make_planner(server, max_repairs=2)
    with pytest.raises(PlannerError, match="still invalid after 2 repairs") as caught:
        await asyncio.wait_for(planner.ask("Look it up", orchestrator), 10)
    assert problem in str(caught.value)
    assert len(server.completions) == 3


async def test_with_no_repairs_the_first_problem_is_final(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply(content="no plan today"))
    with pytest.raises(PlannerError, match="no JSON found"):
        await make_planner(server, max_repairs=0).ask("Look it up", orchestrator)
    assert len(server.completions) == 1


async def test_a_stream_that_breaks_off_is_sent_again_not_repaired(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    text = json.dumps({"tasks": [task("t1", query="a"), task("t2", query="b")]})
    server.queue(
        ScriptedReply(content=text, drop_after=len(text) // 4 - 3),
        ScriptedReply(content=text),
        ScriptedReply.finish("done"),
    )
    result = await planner.ask("Look it up", orchestrator)
    # A transport failure: the same request again, no repair prompt, nothing run twice.
    assert server.completions[1].messages == server.completions[0].messages
    assert sorted(a["query"] for a in calls.args["search"]) == ["a", "b"]
    assert result.answer == "done" and result.plans[0].repairs == 0


async def test_garbage_from_the_joiner_is_repaired(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply.json(GOOD),
        ScriptedReply(content="The answer is 42."),
        ScriptedReply.json({"action": "finish", "answer": ""}),
        ScriptedReply.finish("42"),
    )
    result = await planner.ask("Look it up", orchestrator)
    assert result.answer == "42"
    assert "no JSON found" in server.completions[2].messages[-1]["content"]
    assert "non-empty 'answer'" in server.completions[3].messages[-1]["content"]


async def test_a_placeholder_copied_from_the_format_is_not_an_answer(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply.json(GOOD),
        ScriptedReply.finish("<the answer, or empty>"),
        ScriptedReply.finish("42"),
    )
    result = await planner.ask("Look it up", orchestrator)
    assert result.answer == "42"
    assert "a placeholder, not an answer" in server.completions[2].messages[-1]["content"]
