"""The assembler: valid tasks out as soon as their inputs are known; problems named precisely."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import Orchestrator, Task
from planners.llm.assemble import PlanAssembler, next_task_number
from planners.llm.references import translate_references
from planners.llm.stream import ScannedTask
from tools import ToolRegistry


@pytest.fixture
def tools(orchestrator: Orchestrator) -> ToolRegistry:
    return orchestrator.tools


def feed(assembler: PlanAssembler, *tasks: dict[str, Any]) -> list[list[str]]:
    """The ids released after each task."""
    return [[t.id for t in assembler.add(ScannedTask(i, task))] for i, task in enumerate(tasks)]


def test_tasks_are_released_in_order_and_references_become_dependencies(tools: ToolRegistry) -> None:
    assembler = PlanAssembler(tools)
    released = feed(
        assembler,
        {"id": "t1", "tool": "search", "args": {"query": "a"}},
        {"id": "t2", "tool": "add", "args": {"a": "$t1.score", "b": "${t1}"}, "deps": []},
    )
    assert released == [["t1"], ["t2"]]
    t2 = assembler.dispatched["t2"]
    assert t2.args == {"a": "${{ steps.t1.output.score }}", "b": "${{ steps.t1.output }}"}
    assert t2.dependencies == {"t1"}
    assert assembler.finish() == []


def test_a_task_written_before_its_input_waits_for_it(tools: ToolRegistry) -> None:
    assembler = PlanAssembler(tools)
    released = feed(
        assembler,
        {"id": "t2", "tool": "count_words", "args": {"text": "$t1"}},
        {"id": "t3", "tool": "count_words", "args": {"text": "$t2"}},
        {"id": "t1", "tool": "search", "args": {"query": "a"}},
    )
    assert released == [[], [], ["t1", "t2", "t3"]]
    assert assembler.finish() == []


def test_held_tasks_are_reported_as_cycles_or_dangling_at_the_end(tools: ToolRegistry) -> None:
    assembler = PlanAssembler(tools)
    feed(
        assembler,
        {"id": "t1", "tool": "count_words", "args": {"text": "$t2"}},
        {"id": "t2", "tool": "count_words", "args": {"text": "$t1"}},
        {"id": "t3", "tool": "count_words", "args": {"text": "$t9"}},
        {"id": "t4", "tool": "nope", "args": {}},
        {"id": "t5", "tool": "count_words", "args": {"text": "$t4"}},
    )
    problems = assembler.finish()
    assert problems[0].startswith("task 't4': unknown tool 'nope'")
    assert any(
        p.startswith("cycle: t1 -> t2 -> t1") or p.startswith("cycle: t2 -> t1 -> t2") for p in problems
    )
    assert "task 't3' uses 't9', which does not exist in the plan" in problems
    assert "task 't5' uses 't4', which was rejected (see its problem)" in problems
    assert assembler.dispatched == {}


def test_numbers_as_ids_and_optional_nulls_are_accepted(tools: ToolRegistry) -> None:
    assembler = PlanAssembler(tools)
    feed(assembler, {"id": 1, "tool": "search", "args": {"query": "a"}}, {"id": 2, "tool": "add",
         "args": {"a": 1, "b": 2}, "deps": [1]})  # fmt: skip
    assert list(assembler.dispatched) == ["t1", "t2"]
    assert assembler.dispatched["t2"].deps == ("t1",)


def test_existing_tasks_can_be_used_and_a_repeat_is_dropped(tools: ToolRegistry) -> None:
    done = Task(id="t1", tool="search", args={"query": "a"})
    failed = Task(id="t2", tool="broken", args={"query": "b"})
    assembler = PlanAssembler(tools, existing={"t1": done, "t2": failed}, unusable={"t2": "it failed"})
    released = feed(
        assembler,
        {"id": "t1", "tool": "search", "args": {"query": "a"}},
        {"id": "t3", "tool": "count_words", "args": {"text": "$t1"}},
        {"id": "t4", "tool": "count_words", "args": {"text": "$t2"}},
        {"id": "t2", "tool": "search", "args": {"query": "other"}},
    )
    assert released == [[], ["t3"], [], []]
    assert assembler.finish() == [
        "task 't4' uses 't2', which has no output (it failed)",
        "task 't2': id 't2' is already used by an earlier task; number new tasks from t4",
    ]


def test_shell_dollars_are_not_references() -> None:
    assert translate_references({"cmd": "echo $HOME | awk '{print $1}' $t12x"}) == {
        "cmd": "echo $HOME | awk '{print $1}' $t12x"
    }
    assert translate_references(["$t1[0].name", " $t2 "]) == [
        "${{ steps.t1.output[0].name }}",
        "${{ steps.t2.output }}",
    ]


def test_next_task_number() -> None:
    assert next_task_number([]) == 1
    assert next_task_number(["t1", "t10", "fetch", "t3"]) == 11
