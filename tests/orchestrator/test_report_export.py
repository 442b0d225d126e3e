"""Mermaid, DOT and JSON export: structure, quoting of awkward text, status styling."""

from __future__ import annotations

import json
import re

from orchestrator import RunResult, RunStatus, Task, TaskGraph, TaskResult, TaskStatus
from orchestrator.export import STATUS_COLORS, display_graph, to_dot, to_json, to_mermaid

S = TaskStatus


def diamond() -> TaskGraph:
    return TaskGraph(
        [
            Task(id="fetch", tool="http"),
            Task(id="end", tool="shell"),  # "end" is a Mermaid keyword
            Task(id="other", tool="shell", deps=("fetch",)),  # starts with "o": a circle edge to Mermaid
            Task(id="merge", tool="py", args={"a": "${{ steps.other.output }}"}, deps=("end",)),
        ],
        name="demo",
    )


def result_for(
    graph: TaskGraph, statuses: dict[str, TaskStatus], extra: dict[str, str] | None = None
) -> RunResult:
    tasks = {t.id: TaskResult(id=t.id, tool=t.tool, status=statuses.get(t.id, S.SUCCEEDED)) for t in graph}
    for tid, tool in (extra or {}).items():
        tasks[tid] = TaskResult(id=tid, tool=tool, status=S.SUCCEEDED)
    return RunResult("r1", RunStatus.SUCCEEDED, tasks, started_at=0.0, ended_at=1.0)


def mermaid_edges(text: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s+(\w+) --> (\w+)$", text, re.MULTILINE))


def test_mermaid_is_a_flowchart_with_labels_and_every_edge() -> None:
    text = to_mermaid(diamond())
    assert text.splitlines()[0] == "flowchart TD"
    assert 'n_fetch["fetch<br/>http"]' in text
    assert 'n_end["end<br/>shell"]' in text
    # Implicit dependencies (from ${{ steps.other.output }}) are edges too.
    assert mermaid_edges(text) == {("n_fetch", "n_other"), ("n_end", "n_merge"), ("n_other", "n_merge")}
    assert "classDef" not in text  # no result: no styling


def test_mermaid_sanitises_ids_but_labels_keep_the_real_id() -> None:
    graph = TaskGraph(
        [
            Task(id="each", tool="t", for_each="${{ [1, 2] }}"),
            Task(id="each_0_", tool="t"),  # would collide with the sanitised "each[0]"
            Task(id="a-b", tool="t"),
        ]
    )
    result = result_for(graph, {}, extra={"each[0]": "t", "each[1]": "t"})
    text = to_mermaid(graph, result)
    ids = re.findall(r"^\s+(\S+)\[\"", text, re.MULTILINE)
    assert len(ids) == len(set(ids)) == 5
    assert all(re.fullmatch(r"n_[A-Za-z0-9_]+", i) for i in ids)
    assert '["each[0]<br/>t"]' in text and '["a-b<br/>t"]' in text
    assert 'n_each_0_["each_0_<br/>t"]' in text and 'n_each_0__2["each[0]<br/>t"]' in text
    assert mermaid_edges(text) == {("n_each", "n_each_0__2"), ("n_each", "n_each_1_")}


def test_mermaid_escapes_quotes_and_markup_in_labels() -> None:
    graph = TaskGraph([Task(id="a", tool='say "hi" <b> & #1')])
    text = to_mermaid(graph)
    assert "say #quot;hi#quot; #lt;b#gt; #amp; #35;1" in text
    label = re.search(r'n_a\["(.*)"\]', text)
    assert label is not None and '"' not in label.group(1) and "<b>" not in label.group(1)


def test_mermaid_styles_nodes_by_status() -> None:
    graph = diamond()
    text = to_mermaid(
        graph, result_for(graph, {"fetch": S.FAILED, "other": S.CANCELLED, "merge": S.CANCELLED})
    )
    assert f"classDef failed fill:{STATUS_COLORS[S.FAILED].fill}" in text
    assert "class n_fetch failed" in text
    assert "class n_other,n_merge cancelled" in text or "class n_merge,n_other cancelled" in text
    assert "class n_end succeeded" in text
    assert "classDef skipped" not in text  # only statuses that occur


def test_for_each_items_from_a_result_hang_off_their_parent() -> None:
    graph = TaskGraph(
        [
            Task(id="src", tool="t"),
            Task(id="each", tool="t", for_each="${{ steps.src.output }}", deps=("src",)),
            Task(id="after", tool="t", deps=("each",)),
        ]
    )
    result = result_for(graph, {}, extra={"each[0]": "t", "each[1]": "t"})
    shown = display_graph(graph, result)
    assert shown["each[0]"].deps == ("each",) and shown["each[1]"].deps == ("each",)
    assert ("n_each", "n_each_0_") in mermaid_edges(to_mermaid(graph, result))
    # A live run's graph holds the items with the parent's deps: they are re-wired the same way.
    live = TaskGraph([*graph, Task(id="each[0]", tool="t", deps=("src",))])
    assert display_graph(live)["each[0]"].deps == ("each",)


def test_dot_quotes_every_id_and_label() -> None:
    graph = TaskGraph(
        [Task(id="a", tool='q"uote\\back'), Task(id="b", tool="t", deps=("a",))], name='my "flow"'
    )
    text = to_dot(graph)
    assert text.startswith('digraph "my \\"flow\\"" {')
    assert '"a" [label="a\\nq\\"uote\\\\back"];' in text
    assert '"a" -> "b";' in text
    assert text.rstrip().endswith("}")
    # Every double quote in the text is either escaped or one of a balanced pair on its line.
    for line in text.splitlines():
        assert line.replace('\\"', "").count('"') % 2 == 0, line


def test_dot_fills_nodes_by_status_and_keeps_brackets_of_item_ids_quoted() -> None:
    graph = TaskGraph([Task(id="each", tool="t", for_each="${{ [1] }}")])
    result = result_for(graph, {"each": S.FAILED}, extra={"each[0]": "t"})
    text = to_dot(graph, result)
    failed = STATUS_COLORS[S.FAILED]
    assert f'"each" [label="each\\nt", fillcolor="{failed.fill}", color="{failed.stroke}"' in text
    assert '"each" -> "each[0]";' in text
    assert 'tooltip="succeeded"' in text


def test_json_lists_nodes_with_all_dependencies_and_edges() -> None:
    graph = diamond()
    data = to_json(graph)
    json.dumps(data)  # JSON-ready
    assert data["name"] == "demo"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert list(nodes) == ["fetch", "end", "other", "merge"]
    assert nodes["merge"] == {
        "id": "merge",
        "tool": "py",
        "deps": ["end", "other"],
        "explicit_deps": ["end"],
        "when": None,
        "for_each": None,
    }
    edges = {(e["from"], e["to"]) for e in data["edges"]}
    assert edges == {("fetch", "other"), ("end", "merge"), ("other", "merge")}


def test_json_keeps_conditions_and_fan_out() -> None:
    graph = TaskGraph(
        [
            Task(id="a", tool="t"),
            Task(id="b", tool="t", when="steps.a.output > 1", for_each="${{ [1, 2] }}"),
        ]
    )
    node = to_json(graph)["nodes"][1]
    assert node["when"] == "${{ steps.a.output > 1 }}"
    assert node["for_each"] == "${{ [1, 2] }}"
    assert node["deps"] == ["a"]
