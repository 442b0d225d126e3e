"""The incremental parser: complete tasks come out as soon as they close, whatever the chunking."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from planners.llm import JsonScanner, ScannedTask

PLAN = (
    'Here is the plan:\n```json\n{"thought": "two searches {then} [add] \\"quoted\\"", "tasks": [\n'
    '  {"id": "t1", "tool": "search", "args": {"query": "café ☕ \\u00e9 {not} [a brace]"}, "deps": []},\n'
    '  {"id": "t2", "tool": "search", "args": {"query": "tea\\\\"}, "deps": []},\n'
    '  {"id": "t3", "tool": "add", "args": {"a": "$t1", "b": [1, 2.5e3, {"x": null}]}, "deps": ["t2"]}\n'
    ']}\n```\nDone {"tasks": [{"id": "t9"}]}'
)
EXPECTED = [t for t in json.loads(PLAN[PLAN.index("{") : PLAN.index("```\nDone")])["tasks"]]


def scan(chunks: list[str]) -> tuple[list[ScannedTask], list[str], JsonScanner]:
    scanner = JsonScanner()
    found: list[ScannedTask] = []
    for chunk in chunks:
        found += scanner.feed(chunk)
    return found, scanner.close(), scanner


def values(found: list[ScannedTask]) -> list[Any]:
    assert all(item.problem is None for item in found)
    return [item.value for item in found]


def test_whole_document_yields_every_task_and_ignores_prose_around_it() -> None:
    found, problems, scanner = scan([PLAN])
    assert values(found) == EXPECTED
    assert problems == []
    assert scanner.document["tasks"] == EXPECTED


def test_every_cut_point_gives_the_same_tasks() -> None:
    for cut in range(len(PLAN) + 1):
        found, problems, _ = scan([PLAN[:cut], PLAN[cut:]])
        assert values(found) == EXPECTED, cut
        assert problems == [], cut


def test_every_pair_of_cut_points_gives_the_same_tasks() -> None:
    step = 3  # all pairs of a 3-character grid: ~ (len/3)^2 / 2 documents
    for first in range(0, len(PLAN) + 1, step):
        for second in range(first, len(PLAN) + 1, step):
            found, problems, _ = scan([PLAN[:first], PLAN[first:second], PLAN[second:]])
            assert values(found) == EXPECTED, (first, second)
            assert problems == []


def test_one_character_at_a_time() -> None:
    found, problems, _ = scan(list(PLAN))
    assert values(found) == EXPECTED
    assert problems == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(PLAN)), max_size=30))
def test_any_chunking_gives_the_same_tasks(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(PLAN)]
    chunks = [PLAN[a:b] for a, b in itertools.pairwise(points)]
    found, problems, _ = scan(chunks)
    assert values(found) == EXPECTED
    assert problems == []


def test_a_task_is_reported_the_moment_its_object_closes() -> None:
    scanner = JsonScanner()
    first = '{"tasks": [{"id": "t1", "tool": "search", "args": {"query": "x"}}'
    assert [t.value["id"] for t in scanner.feed(first)] == ["t1"]
    assert scanner.feed(', {"id": "t2", "tool": "search", "args": {"query": "y"') == []
    assert [t.value["id"] for t in scanner.feed("}}")] == ["t2"]


def test_a_bare_array_is_read_as_the_tasks() -> None:
    found, problems, _ = scan(['[{"id": "t1", "tool": "s"}, {"id": "t2", "tool": "s"}]'])
    assert [v["id"] for v in values(found)] == ["t1", "t2"]
    assert problems == []


def test_truncated_json_keeps_the_complete_tasks_and_reports_the_truncation() -> None:
    cut = PLAN.index('{"id": "t3"') + 20
    found, problems, _ = scan([PLAN[:cut]])
    assert [v["id"] for v in values(found)] == ["t1", "t2"]
    assert len(problems) == 1 and "ended early" in problems[0]


def test_non_object_elements_are_reported_by_index() -> None:
    found, problems, _ = scan(['{"tasks": [{"id": "t1"}, "t2", 3, [4], {"id": "t5"}]}'])
    assert [(f.index, f.problem is None) for f in found] == [
        (0, True),
        (1, False),
        (2, False),
        (3, False),
        (4, True),
    ]
    assert found[1].problem == "tasks[1] is not a JSON object"
    assert problems == []


def test_no_json_and_no_tasks_key_are_problems() -> None:
    assert "no JSON found" in scan(["I cannot help with that."])[1][0]
    assert 'no "tasks" list' in scan(['{"steps": [{"id": "t1"}]}'])[1][0]
    assert "not valid JSON" in scan(['{"tasks": [], "x": tru}'])[1][0]


def test_the_tasks_key_is_found_only_at_the_top_level() -> None:
    found, problems, _ = scan(['{"meta": {"tasks": [{"id": "inner"}]}, "tasks": [{"id": "t1"}]}'])
    assert [v["id"] for v in values(found)] == ["t1"]
    assert problems == []


def test_a_raw_line_break_inside_a_string_is_read_not_rejected() -> None:
    """Small models write multi-line answers without escaping the line breaks."""
    scanner = JsonScanner(tasks_key=None)
    scanner.feed('{"action": "finish", "answer": "line one\nline two\tend"}')
    assert scanner.close() == []
    assert scanner.document == {"action": "finish", "answer": "line one\nline two\tend"}
    tasks = JsonScanner()
    found = tasks.feed('{"tasks": [{"id": "t1", "tool": "x", "args": {"text": "a\nb"}}]}')
    assert [t.value for t in found] == [{"id": "t1", "tool": "x", "args": {"text": "a\nb"}}]
