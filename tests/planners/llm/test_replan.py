"""Joiner and replanning: a permanent tool failure is routed around, finished work never reruns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from orchestrator import Event, Orchestrator, PlannerError, RunStatus, Task, TaskGraph, TaskStatus
from planners.llm import LLMPlanner, PlannerCallStarted
from planners.llm.testing import OpenAITestServer, ScriptedReply
from tools import Tool

from .conftest import Calls


def task(
    task_id: str, tool: str = "search", deps: list[str] | None = None, **args: object
) -> dict[str, object]:
    return {"id": task_id, "tool": tool, "args": args, "deps": deps or []}


FIRST = [task("t1", query="a"), task("t2", "broken", query="b"), task("t3", "count_words", text="$t2")]
SECOND = [task("t4", query="b"), task("t5", "count_words", text="$t1 / $t4")]


async def test_joiner_replans_around_a_failed_tool_reusing_finished_outputs(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator, calls: Calls
) -> None:
    server.queue(
        ScriptedReply.plan(FIRST),
        ScriptedReply.replan("the mirror is down; search instead"),
        ScriptedReply.plan(SECOND),
        ScriptedReply.finish("a and b found"),
    )
    result = await planner.ask("Find a and b", orchestrator)

    assert result.answer == "a and b found"
    assert [a["query"] for a in calls.args["search"]] == ["a", "b"], "t1 ran exactly once"
    assert calls.count("broken") == 1
    outcome = result.run_result
    assert outcome.tasks["t2"].status is TaskStatus.FAILED
    assert outcome.tasks["t3"].status is TaskStatus.CANCELLED
    assert outcome.outputs["t5"] == 7  # "snippet about a / snippet about b"
    assert outcome.tasks["t1"].attempts == 1
    assert [p.kind for p in result.plans] == ["plan", "replan"]
    assert result.plans[1].reason == "the mirror is down; search instead"
    assert result.replans == 1
    assert [d.action for d in result.decisions] == ["replan", "finish"]

    join1, replan, join2 = server.completions[1:]
    assert "t2 = broken" in join1.text and "mirror is down" in join1.text
    assert "the mirror is down; search instead" in replan.text
    assert 't1 = search({"query": "a"}) -> succeeded: "snippet about a"' in replan.text
    assert "numbered from t4" in replan.text
    assert "t5 = count_words" in join2.text and "-> succeeded: 7" in join2.text


async def test_a_replan_may_not_use_a_failed_tasks_output(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(
        ScriptedReply.plan(FIRST),
        ScriptedReply.replan("try again"),
        ScriptedReply.plan([task("t4", "count_words", text="$t2")]),
        ScriptedReply.plan(SECOND),
        ScriptedReply.finish("done"),
    )
    result = await planner.ask("Find a and b", orchestrator)
    problem = server.completions[3].messages[-1]["content"]
    assert "task 't4' uses 't2', which has no output (it failed: ToolError: mirror is down)" in problem
    assert result.answer == "done"


async def test_max_replans_is_honoured(
    server: OpenAITestServer,
    make_planner: Callable[..., LLMPlanner],
    orchestrator: Orchestrator,
    calls: Calls,
) -> None:
    planner = make_planner(server, max_replans=1)
    server.queue(
        ScriptedReply.plan([task("t1", "broken", query="a")]),
        ScriptedReply.replan("the mirror failed"),
        ScriptedReply.plan([task("t2", "broken", query="a again")]),
        ScriptedReply.replan("still failing"),  # not allowed any more: repaired to a finish
        ScriptedReply.finish("the mirror is down, no answer"),
    )
    result = await planner.ask("Find a", orchestrator)

    assert result.answer == "the mirror is down, no answer"
    assert result.replans == 1
    assert calls.count("broken") == 2
    last_join = server.completions[3]
    assert "Replanning is no longer possible" in last_join.messages[0]["content"]
    schema = last_join.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["action"]["enum"] == ["finish"]
    assert "max_replans reached" in server.completions[4].messages[-1]["content"]


async def test_a_joiner_that_insists_on_replanning_fails_clearly(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    planner = make_planner(server, max_replans=0, max_repairs=1)
    server.queue(
        ScriptedReply.plan([task("t1", "broken", query="a")]),
        ScriptedReply.replan("again"),
        ScriptedReply.replan("again"),
    )
    with pytest.raises(PlannerError, match="max_replans reached"):
        await planner.ask("Find a", orchestrator)


async def test_the_replan_failure_policy_recovers_at_once_and_drops_waiting_tasks(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], toolset: list[Tool], calls: Calls
) -> None:
    planner = make_planner(server)
    orchestrator = Orchestrator(toolset, failure_policy="replan", replanner=planner.replanner)
    server.queue(
        ScriptedReply.plan(FIRST),
        ScriptedReply.plan(SECOND),  # asked by the hook when t2 fails; t3 waited on t2
        ScriptedReply.finish("recovered"),
    )
    result = await planner.ask("Find a and b", orchestrator)

    assert result.answer == "recovered"
    assert result.run_result.status is RunStatus.SUCCEEDED, "the failure was recovered"
    assert "t3" not in result.run_result.tasks
    assert result.run_result.outputs["t5"] == 7
    hook = server.completions[1]
    assert hook.stream is True, "streamed, so first_token_timeout and idle_timeout cover it"
    assert "Task t2 failed: ToolError: mirror is down" in hook.text
    assert "removed: t3" in hook.text
    assert [p.kind for p in result.plans] == ["plan", "replan"]
    assert [a["query"] for a in calls.args["search"]] == ["a", "b"]


async def test_replanner_for_recovers_a_fixed_graph(
    server: OpenAITestServer, planner: LLMPlanner, toolset: list[Tool], calls: Calls
) -> None:
    hook = planner.replanner_for(Orchestrator(toolset).tools, goal="look up b")
    orchestrator = Orchestrator(toolset, failure_policy="replan", replanner=hook)
    graph = TaskGraph(
        [
            Task(id="t1", tool="broken", args={"query": "b"}),
            Task(id="t2", tool="count_words", args={"text": "${{ steps.t1.output }}"}),
        ]
    )
    server.queue(ScriptedReply.plan([task("t3", query="b"), task("t4", "count_words", text="$t3")]))
    result = await orchestrator.run(graph)
    assert result.ok
    assert result.outputs["t4"] == 3
    assert "look up b" in server.completions[0].text


async def test_under_fail_fast_the_joiner_still_answers_from_what_finished(
    server: OpenAITestServer, planner: LLMPlanner, toolset: list[Tool]
) -> None:
    orchestrator = Orchestrator(toolset, failure_policy="fail_fast")
    server.queue(
        ScriptedReply.plan([task("t1", "broken", query="a")]),
        ScriptedReply.finish("could not look it up"),
    )
    result = await planner.ask("Find a", orchestrator)
    assert result.answer == "could not look it up"
    assert result.run_result.status is RunStatus.FAILED
    assert "Replanning is no longer possible" in server.completions[1].messages[0]["content"]


async def test_ids_stay_unique_across_a_plan_its_repair_and_a_failure_replan(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], toolset: list[Tool], calls: Calls
) -> None:
    """t1 fails while the plan still streams; the failure replan takes t2; the repair must not."""
    planner = make_planner(server)
    orchestrator = Orchestrator(toolset, failure_policy="replan", replanner=planner.replanner)
    first = json.dumps({"tasks": [task("t1", "broken", query="a")]})[:-2]
    replan_seen = asyncio.Event()
    server.queue(
        # The plan: t1 (broken), then -- once the failure replan has asked -- a bad t2.
        ScriptedReply(
            chunks=[first, ', {"id": "t2", "tool": "search", "args": {}, "deps": []}]}'],
            pause_before=1,
            resume=replan_seen,
        ),
        ScriptedReply.plan([task("t2", query="b")]),  # the failure replan (after the plan's stream)
        ScriptedReply.plan([task("t2", query="c")]),  # the repair reuses t2: refused
        ScriptedReply.plan([task("t3", query="c")]),  # the second repair numbers on
        ScriptedReply.finish("b and c"),
    )

    def on_event(event: Event) -> None:
        if isinstance(event, PlannerCallStarted) and event.call == "replan":
            replan_seen.set()

    result = await planner.ask("Find a", orchestrator, on_event=on_event, time_limit=30)
    assert result.answer == "b and c"
    assert sorted(a["query"] for a in calls.args["search"]) == ["b", "c"]
    assert "'t2' is already used in this run; number new tasks from t3" in server.completions[3].text
    ids = [t.id for plan in result.plans for t in plan.tasks]
    assert sorted(ids) == ["t1", "t2", "t3"]
