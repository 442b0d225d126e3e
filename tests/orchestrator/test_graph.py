"""Task graphs: validation naming offending ids, edits applied atomically, analysis."""

from __future__ import annotations

import pytest

from orchestrator import (
    GraphEdit,
    GraphEditError,
    GraphValidationError,
    Task,
    TaskGraph,
    WorkflowError,
)
from orchestrator.analysis import critical_path, layers, width
from tools import ToolRegistry, tool


@tool
async def fetch(url: str) -> str:
    return url


@tool
async def merge(x: str, y: str = "") -> str:
    return x + y


TOOLS = ToolRegistry([fetch, merge])


def problems_of(graph: TaskGraph) -> str:
    with pytest.raises(GraphValidationError) as info:
        graph.validate(TOOLS)
    assert isinstance(info.value, WorkflowError)
    return str(info.value)


def test_dependencies_merge_explicit_deps_and_references() -> None:
    task = Task(id="c", tool="merge", args={"x": "${{ steps.a.output }}"}, deps=["b"], when="steps.d.output")
    assert task.dependencies == {"a", "b", "d"}
    assert task.when == "${{ steps.d.output }}"


def test_unknown_tool_named_with_suggestion() -> None:
    message = problems_of(TaskGraph([Task(id="a", tool="fetsh", args={"url": "u"})]))
    assert "task 'a'" in message and "unknown tool 'fetsh'" in message and "did you mean 'fetch'" in message


def test_missing_dependency_and_unknown_reference() -> None:
    message = problems_of(
        TaskGraph(
            [
                Task(id="fetch_a", tool="fetch", args={"url": "u"}),
                Task(id="b", tool="fetch", args={"url": "u"}, deps=["ghost"]),
                Task(id="c", tool="merge", args={"x": "${{ steps.fetch_b.output }}"}),
            ]
        )
    )
    assert "task 'b' depends on unknown task 'ghost'" in message
    assert "task 'c': args.x references unknown step 'fetch_b' (did you mean 'fetch_a'?)" in message
    assert "2 problems" in message


def test_cycle_is_reported_with_its_path() -> None:
    graph = TaskGraph(
        [
            Task(id="start", tool="fetch", args={"url": "u"}),
            Task(id="a", tool="merge", args={"x": "${{ steps.c.output }}"}, deps=["start"]),
            Task(id="b", tool="merge", args={"x": "${{ steps.a.output }}"}),
            Task(id="c", tool="merge", args={"x": "${{ steps.b.output }}"}),
        ]
    )
    assert graph.find_cycle() in (["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])
    assert "cycle: " in problems_of(graph)
    with pytest.raises(GraphValidationError, match="cycle"):
        graph.topological_order()


def test_self_dependency_and_duplicates() -> None:
    assert "depends on itself" in problems_of(
        TaskGraph([Task(id="a", tool="fetch", args={"url": "u"}, deps=["a"])])
    )
    with pytest.raises(GraphValidationError, match="duplicate task id 'a'"):
        TaskGraph([Task(id="a", tool="fetch"), Task(id="a", tool="fetch")])


def test_invalid_constant_arguments_are_definition_errors() -> None:
    message = problems_of(TaskGraph([Task(id="a", tool="fetch", args={"url": 5, "retries": 1})]))
    assert "task 'a' (tool 'fetch'): unknown argument 'retries'" in message
    assert "argument 'url'" in message and "valid string" in message
    message = problems_of(TaskGraph([Task(id="a", tool="merge", args={})]))
    assert "missing required argument 'x'" in message


def test_bad_expression_is_a_definition_error_naming_the_task() -> None:
    message = problems_of(TaskGraph([Task(id="a", tool="fetch", args={"url": "${{ oops.x }}"})]))
    assert "task 'a'" in message and "unknown name 'oops'" in message


@pytest.mark.parametrize("field", ["when", "for_each"])
def test_a_condition_or_list_made_of_text_and_placeholders_is_a_problem(field: str) -> None:
    # "${{ a }} and ${{ b }}" renders to a non-empty string: it would always be true.
    source = "${{ steps.a.output }} and ${{ steps.a.output }}"
    graph = TaskGraph(
        [
            Task(id="a", tool="fetch", args={"url": "u"}),
            Task(id="b", tool="fetch", args={"url": "u"}, **{field: source}),
        ]
    )
    (problem,) = graph.problems(TOOLS)
    assert problem.startswith(f"task 'b': {field} must be one expression") and "${{ a and b }}" in problem
    single = TaskGraph(
        [
            Task(id="a", tool="fetch", args={"url": "u"}),
            Task(id="b", tool="fetch", args={"url": "u"}, when="${{ steps.a.output and steps.a.output }}"),
        ]
    )
    assert single.problems(TOOLS) == []


def test_bad_task_fields_are_rejected_by_the_model() -> None:
    with pytest.raises(ValueError, match="id"):
        Task(id="has space", tool="fetch")
    with pytest.raises(ValueError, match="timeout"):
        Task(id="a", tool="fetch", timeout=0)
    with pytest.raises(WorkflowError, match=r"unknown field 'retry' \(did you mean 'retries'\?\)"):
        Task.model_validate({"id": "a", "tool": "fetch", "retry": 2})


def base_graph() -> TaskGraph:
    return TaskGraph(
        [
            Task(id="a", tool="fetch", args={"url": "a"}),
            Task(id="b", tool="merge", args={"x": "${{ steps.a.output }}"}),
            Task(id="c", tool="merge", args={"x": "c"}, deps=["b"]),
        ]
    )


def test_edit_applies_to_a_copy() -> None:
    graph = base_graph()
    edited = graph.apply(
        GraphEdit(
            add=[Task(id="d", tool="fetch", args={"url": "d"})],
            add_deps=[("c", "d")],
            update=[Task(id="b", tool="merge", args={"x": "new"})],
        ),
        tools=TOOLS,
    )
    assert set(edited.tasks) == {"a", "b", "c", "d"}
    assert edited["c"].dependencies == {"b", "d"}
    assert edited["b"].dependencies == frozenset()
    assert set(graph.tasks) == {"a", "b", "c"} and graph["b"].dependencies == {"a"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (GraphEdit(add_deps=[("b", "c")]), "cycle"),
        (GraphEdit(remove=["a"]), "already started"),
        (GraphEdit(remove=["b"]), "unknown task 'b'"),
        (GraphEdit(update=[Task(id="a", tool="fetch", args={"url": "z"})]), "already started"),
        (GraphEdit(add=[Task(id="c", tool="fetch", args={"url": "z"})]), "exists"),
        (GraphEdit(add=[Task(id="z", tool="nope")]), "unknown tool 'nope'"),
        (GraphEdit(remove_deps=[("b", "a")]), "comes from an expression"),
    ],
)
def test_rejected_edits_change_nothing(edit: GraphEdit, message: str) -> None:
    graph = base_graph()
    before = graph.to_dict()
    with pytest.raises(GraphEditError, match=message):
        graph.apply(edit, frozen={"a"}, tools=TOOLS)
    assert graph.to_dict() == before


def test_serialisation_round_trip() -> None:
    graph = base_graph()
    assert TaskGraph.from_dict(graph.to_dict()).to_dict() == graph.to_dict()


def test_analysis_layers_width_critical_path() -> None:
    graph = TaskGraph(
        [
            Task(id="a", tool="fetch"),
            Task(id="b", tool="fetch", deps=["a"]),
            Task(id="c", tool="fetch", deps=["a"]),
            Task(id="d", tool="fetch", deps=["b", "c"]),
            Task(id="e", tool="fetch"),
        ]
    )
    assert layers(graph) == [["a", "e"], ["b", "c"], ["d"]]
    assert width(graph) == 2
    assert critical_path(graph) == (["a", "b", "d"], 3.0) or critical_path(graph)[1] == 3.0
    path, length = critical_path(graph, {"a": 1.0, "b": 0.5, "c": 2.0, "d": 1.0, "e": 5.0})
    assert (path, length) == (["e"], 5.0)
    path, length = critical_path(graph, {"a": 1.0, "b": 0.5, "c": 2.0, "d": 1.0, "e": 3.0})
    assert (path, length) == (["a", "c", "d"], 4.0)


def test_add_appends_a_task_checked_with_task_problems() -> None:
    graph = TaskGraph([Task(id="a", tool="fetch", args={"url": "u"})])
    late = Task(id="b", tool="fetch", args={"url": "${{ steps.a.output }}"}, deps=["a"])
    assert graph.task_problems(late, ToolRegistry([fetch])) == []
    typo = Task(id="c", tool="fetch", args={"url": "${{ steps.aa.output }}"})
    assert graph.task_problems(typo) == [
        "task 'c': args.url references unknown step 'aa' (did you mean 'a'?)"
    ]
    graph.add(late)
    assert list(graph.tasks) == ["a", "b"]
    with pytest.raises(GraphValidationError, match="duplicate task id 'b'"):
        graph.add(late)
