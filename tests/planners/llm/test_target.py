"""``LLMPlanner(target=…)``: the model plans what to do, the caller decides where it runs."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator import LabelsTarget, Orchestrator
from planners.llm import LLMPlanner
from planners.llm.testing import OpenAITestServer, ScriptedReply


async def test_planned_tasks_carry_the_planners_target(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    lab = LabelsTarget(labels={"site": "lab"})
    planner = make_planner(server, target=lab)
    server.queue(
        ScriptedReply.plan(
            [
                {"id": "t1", "tool": "search", "args": {"query": "a"}},
                {"id": "t2", "tool": "count_words", "args": {"text": "$1"}, "deps": ["t1"]},
            ]
        )
    )
    graph = await planner.plan("Count the words of a snippet", orchestrator.tools)
    assert [task.target for task in graph] == [lab, lab]
    assert not any(task.is_local for task in graph)


async def test_by_default_tasks_run_locally(
    planner: LLMPlanner, server: OpenAITestServer, orchestrator: Orchestrator
) -> None:
    server.queue(ScriptedReply.plan([{"id": "t1", "tool": "search", "args": {"query": "a"}}]))
    graph = await planner.plan("Search", orchestrator.tools)
    assert graph["t1"].is_local
