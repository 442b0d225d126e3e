"""Python API mistakes become WorkflowErrors that say what to write (or the obvious form works)."""

from __future__ import annotations

import pytest

from orchestrator import Orchestrator, Task, TaskGraph, TaskRetrying, WorkflowError
from tools import ToolDefinitionError, tool


def test_one_dependency_as_a_string_is_a_list() -> None:
    assert Task(id="b", tool="t", deps="a").deps == ("a",)  # type: ignore[arg-type]


def test_a_bad_id_says_the_rule_without_a_regex() -> None:
    with pytest.raises(WorkflowError) as info:
        Task(id="fetch data", tool="t")
    message = str(info.value)
    assert message.startswith("invalid task 'fetch data': id 'fetch data' is not a valid id")
    assert "letters, digits, '_' and '-'" in message
    assert "^[" not in message and "pattern" not in message


def test_foreign_field_names_and_bad_values_are_named() -> None:
    with pytest.raises(WorkflowError, match=r"unknown field 'needs' \(did you mean 'deps'\?\)"):
        Task(id="a", tool="t", needs=["b"])  # type: ignore[call-arg]
    with pytest.raises(WorkflowError, match=r"deps must be a list of task ids, e.g. deps=\['fetch'\]; got 5"):
        Task(id="a", tool="t", deps=5)  # type: ignore[arg-type]
    with pytest.raises(
        WorkflowError, match=r"^invalid task 'a': target must be 'local', 'any-device'.*got 'gpu'$"
    ):
        Task(id="a", tool="t", target="gpu")  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match=r"^invalid task: missing 'id'; missing 'tool'$"):
        Task()  # type: ignore[call-arg]


def test_a_graph_accepts_dicts_and_names_anything_else() -> None:
    graph = TaskGraph([{"id": "a", "tool": "t"}, {"id": "b", "tool": "t", "deps": "a"}])
    assert isinstance(graph["b"], Task) and graph["b"].deps == ("a",)
    with pytest.raises(WorkflowError, match=r"task 1 is of type str; a graph takes Task\(id=\.\.\."):
        TaskGraph([Task(id="a", tool="t"), "b"])  # type: ignore[list-item]
    with pytest.raises(WorkflowError, match=r"a graph takes a list of tasks, got one Task: write \[task\]"):
        TaskGraph(Task(id="a", tool="t"))  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match=r"^invalid task 'x': missing 'tool'$"):
        TaskGraph([{"id": "x"}])


async def test_tool_backoff_is_the_default_a_task_overrides() -> None:
    calls = 0

    @tool(retries=1, backoff=0)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ConnectionError("refused")
        return "ok"

    orchestrator = Orchestrator(tools=[flaky], default_backoff=30)
    events = [e async for e in orchestrator.run_stream([Task(id="f", tool="flaky")])]
    assert [e.delay for e in events if isinstance(e, TaskRetrying)] == [0.0]  # the tool's, not 30 s
    events = [e async for e in orchestrator.run_stream([Task(id="f", tool="flaky", backoff=0.001)])]
    [delay] = [e.delay for e in events if isinstance(e, TaskRetrying)]
    assert 0.001 <= delay <= 0.002  # the task's: base plus at most as much jitter


def test_tool_backoff_must_not_be_negative() -> None:
    with pytest.raises(ToolDefinitionError, match="backoff must be >= 0 seconds, got -1"):

        @tool(backoff=-1)
        def bad() -> None: ...
