"""A plan is untrusted: planned calls that may change something wait for the approver."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator import Orchestrator, Task
from planners.llm import LLMPlanner
from planners.llm.testing import OpenAITestServer, ScriptedReply
from tools import Tool, tool


def make_tools(log: list[str]) -> list[Tool]:
    @tool(read_only=True)
    def lookup(key: str) -> str:
        """Read a value."""
        log.append(f"lookup {key}")
        return f"value of {key}"

    @tool
    def store(key: str, value: str) -> str:
        """Write a value (a side effect: not read-only)."""
        log.append(f"store {key}={value}")
        return "stored"

    @tool(read_only=lambda args: not args.get("write"))
    def query(text: str, write: bool = False) -> str:
        """Query a database; ``write`` lets the query change it."""
        log.append(f"query {text} write={write}")
        return f"rows for {text}"

    return [lookup, store, query]


class Recorder:
    """An approver that answers ``answer`` and remembers what it was shown."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, task: Task, args: Mapping[str, Any]) -> bool:
        self.seen.append((task.id, dict(args)))
        return self.answer


PLAN = [
    {"id": "t1", "tool": "lookup", "args": {"key": "a"}},
    {"id": "t2", "tool": "query", "args": {"text": "select 1"}},
    {"id": "t3", "tool": "store", "args": {"key": "b", "value": "$t1"}},
    {"id": "t4", "tool": "query", "args": {"text": "delete from x", "write": True}},
]


async def test_without_an_approver_only_read_only_calls_run(
    server: OpenAITestServer, planner: LLMPlanner
) -> None:
    log: list[str] = []
    server.queue(ScriptedReply.plan(PLAN), ScriptedReply.finish("partly"))
    result = await planner.ask("Copy a to b", Orchestrator(make_tools(log), failure_policy="continue"))
    assert log == ["lookup a", "query select 1 write=False"]
    tasks = result.run_result.tasks
    for refused in ("t3", "t4"):
        error = tasks[refused].error
        assert error is not None and error.type == "ApprovalRequired"


async def test_the_approver_decides_and_sees_the_rendered_arguments(
    server: OpenAITestServer, planner: LLMPlanner
) -> None:
    log: list[str] = []
    approver = Recorder(True)
    server.queue(ScriptedReply.plan(PLAN), ScriptedReply.finish("copied"))
    orchestrator = Orchestrator(make_tools(log), failure_policy="continue", approver=approver)
    result = await planner.ask("Copy a to b", orchestrator)
    assert result.run_result.ok
    # Asked only about the calls that change something, with the values that ran.
    assert sorted(approver.seen, key=lambda seen: seen[0]) == [
        ("t3", {"key": "b", "value": "value of a"}),
        ("t4", {"text": "delete from x", "write": True}),
    ]
    assert "store b=value of a" in log


async def test_a_refusal_stops_the_call(server: OpenAITestServer, planner: LLMPlanner) -> None:
    log: list[str] = []
    server.queue(ScriptedReply.plan(PLAN), ScriptedReply.finish("refused"))
    orchestrator = Orchestrator(make_tools(log), failure_policy="continue", approver=Recorder(False))
    result = await planner.ask("Copy a to b", orchestrator)
    assert not any(line.startswith("store") or "write=True" in line for line in log)
    error = result.run_result.tasks["t3"].error
    assert error is not None and error.type == "ApprovalDenied"


async def test_a_call_whose_arguments_are_known_only_at_run_time_is_gated(
    server: OpenAITestServer, planner: LLMPlanner
) -> None:
    # `write` comes from another task: read-only or not is decided on the rendered value.
    plan = [
        {"id": "t1", "tool": "lookup", "args": {"key": "flag"}},
        {"id": "t2", "tool": "query", "args": {"text": "x", "write": "$t1"}},
    ]
    approver = Recorder(False)
    server.queue(ScriptedReply.plan(plan), ScriptedReply.finish("ok"))
    tools = make_tools([])
    await planner.ask("Query", Orchestrator(tools, failure_policy="continue", approver=approver))
    assert [task_id for task_id, _ in approver.seen] == ["t2"]
    assert approver.seen[0][1]["write"] == "value of flag"


async def test_require_approval_false_trusts_the_plan(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner]
) -> None:
    log: list[str] = []
    server.queue(ScriptedReply.plan(PLAN), ScriptedReply.finish("done"))
    planner = make_planner(server, require_approval=False)
    result = await planner.ask("Copy a to b", Orchestrator(make_tools(log), failure_policy="continue"))
    assert result.run_result.ok and "store b=value of a" in log


async def test_tasks_of_a_replan_are_gated_too(server: OpenAITestServer, planner: LLMPlanner) -> None:
    log: list[str] = []

    @tool(read_only=True, retries=0)
    def flaky(key: str) -> str:
        """A read that fails."""
        raise ValueError("unreachable store")

    approver = Recorder(False)
    tools = [*make_tools(log), flaky]
    orchestrator = Orchestrator(
        tools, failure_policy="replan", replanner=planner.replanner, approver=approver
    )
    server.queue(
        ScriptedReply.plan([{"id": "t1", "tool": "flaky", "args": {"key": "a"}}]),
        # The recovery plan (asked when t1 fails) writes instead: it must be approved.
        ScriptedReply.plan([{"id": "t2", "tool": "store", "args": {"key": "a", "value": "guess"}}]),
    )
    server.responder = lambda record: ScriptedReply.finish("could not")  # any further call
    await planner.ask("Read a", orchestrator)
    assert [task_id for task_id, _ in approver.seen] == ["t2"]
    assert log == []
