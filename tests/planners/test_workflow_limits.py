"""Hostile or huge YAML input files: big workflows load, bombs and odd bytes give one-line
errors naming the file and line, quickly, never a traceback (security review, finding 15)."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from planners import Problem, WorkflowFileError, load_workflow, parse_workflow
from planners.workflow import yaml_source
from planners.workflow.yaml_source import MAX_BYTES_ENV, YamlLimits, read_yaml, safe_load


@pytest.fixture(autouse=True)
def _no_garbage_from_earlier_tests() -> None:
    """The CPU-time bounds below are about each test's own work: a refused big file leaves
    a cycle (its error's traceback holds the parse) whose collection would otherwise land
    in whichever test allocates next (0.3-0.6 s measured, against bounds of 1-2 s)."""
    gc.collect()


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with libyaml's composer and with PyYAML's own (used when libyaml is missing)."""
    if request.param == "libyaml":
        if yaml_source._FAST_LOADER is None:
            pytest.skip("PyYAML was built without libyaml 0.2.6+")
    else:
        monkeypatch.setattr(yaml_source, "_FAST_LOADER", None)
    yield request.param


def only_problem(text: str, source: str = "flow.yaml") -> Problem:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, source=source)
    assert len(caught.value.problems) == 1, caught.value.problems
    return caught.value.problems[0]


def steps_yaml(count: int) -> str:
    """The smallest steps there are (`id`, `tool`, `args.x`), as the review wrote them."""
    body = "".join(f"  - id: s{i}\n    tool: echo\n    args:\n      x: {i}\n" for i in range(count))
    return "name: big\nsteps:\n" + body


def test_a_workflow_far_bigger_than_the_old_cap_loads() -> None:
    # 25,000 steps are 100,000+ values: refused as "too many aliases?" before, with no alias.
    # (50,000 steps load too, in about 3 s: too slow for the suite, measured by hand.)
    count = 25_000
    workflow = parse_workflow(steps_yaml(count), source="big.yaml")
    assert len(workflow.steps) == count
    assert workflow.steps[-1].args == {"x": count - 1}
    assert workflow.line_of(f"s{count - 1}") == 3 + 4 * (count - 1)


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bombs_are_refused_fast_at_the_alias(loader: str) -> None:
    started = time.process_time()
    problem = only_problem(billion_laughs())
    assert time.process_time() - started < 2
    assert problem.message.startswith("aliases add more than 100000 values beyond the ")
    # a1 to a3 expand to 12,330 values; a4's aliases of a3 pass the limit: the problem
    # points at the anchor being multiplied, a3 on line 4 (an alias has no node of its own).
    assert (problem.file, problem.line) == ("flow.yaml", 4)


def test_merge_key_bombs_are_refused(loader: str) -> None:
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: v" for j in range(10)) + "}"]
    for i in range(1, 8):
        merged = ", ".join(f"x{j}: {{<<: *m{i - 1}}}" for j in range(10))
        lines.append(f"m{i}: &m{i} {{{merged}}}")
    problem = only_problem("\n".join(lines) + "\n")
    assert "aliases add more than" in problem.message and problem.line is not None


def test_merge_keys_copying_a_big_mapping_into_many_are_refused(loader: str) -> None:
    # Merged pairs are alias uses: 5,000 copies of 2,000 keys took 47 s and 4 GB unchecked.
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: v" for j in range(2000)) + "}"]
    lines += [f"x{i}: {{<<: *m0}}" for i in range(5000)]
    started = time.process_time()
    problem = only_problem("\n".join(lines) + "\n")
    assert time.process_time() - started < 2
    assert "aliases add more than" in problem.message and problem.line == 53  # x51 passes the limit


def test_merge_chains_defined_inside_merge_lists_are_refused(loader: str) -> None:
    # Anchors defined inside the merge list of the next level: everything is flattened
    # before any value is built, so flattening itself must stay small.
    inner = "&m0 {" + ", ".join(f"k{j}: v" for j in range(10)) + "}"
    for i in range(1, 9):
        copies = ", ".join([f"*m{i - 1}"] * 10)
        inner = f"&m{i} {{<<: [{inner}, {copies}], l{i}: [{copies}]}}"
    started = time.process_time()
    problem = only_problem("top: " + inner + "\n")
    assert time.process_time() - started < 2
    assert "aliases add more than" in problem.message


def test_merge_keys_keep_their_meaning(loader: str) -> None:
    workflow = parse_workflow(
        "name: x\n"
        "defaults: &d {timeout: 5, retries: 1}\n"
        "steps:\n"
        "  - {<<: [*d, &more {retries: 3, backoff: 2}], id: a, tool: wait, args: {seconds: 0}}\n"
        "  - {<<: *more, retries: 0, id: b, tool: wait, args: {seconds: 0}}\n"  # own keys win
    )
    a, b = workflow.steps
    assert (a.timeout, a.retries, a.backoff) == (5, 1, 2)  # the first mapping of a list wins
    assert (b.retries, b.backoff) == (0, 2)


def test_aliases_that_stay_small_are_fine(loader: str) -> None:
    workflow = parse_workflow(
        "name: x\n"
        "defaults: &policy {timeout: 5, retries: 1}\n"
        "steps:\n"
        "  - {id: a, tool: echo, args: {text: hi}, <<: *policy}\n"
        "  - {id: b, tool: echo, args: {text: hi}, <<: *policy}\n"
    )
    assert [step.timeout for step in workflow.steps] == [5, 5]


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        (
            "deep list",
            "name: x\nsteps:\n  - id: a\n    tool: shell\n    args:\n      argv: "
            + "[" * 50_000
            + "]" * 50_000
            + "\n",
        ),
        ("deep map", "name: x\nsteps: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n"),
        ("deep block list", "name: x\nsteps:\n" + "- " * 50_000 + "x\n"),
        ("deep but parseable", "name: x\nsteps: " + "[" * 500 + "]" * 500 + "\n"),
    ],
)
def test_deep_nesting_is_one_clear_error(loader: str, shape: str, text: str) -> None:
    started = time.process_time()
    problem = only_problem(text)
    # Each shape takes under 10 ms with either loader. PyYAML's own scanner took 0.7 s on
    # the deep list before it stopped at max_depth flow levels (it is quadratic in them).
    assert time.process_time() - started < 0.25, shape
    assert problem.file == "flow.yaml"
    assert "nest" in problem.message, problem.message


def test_a_nul_byte_is_located(loader: str) -> None:
    problem = only_problem("name: x\nsteps:\n  - id: a\x00b\n")
    assert (problem.file, problem.line, problem.column) == ("flow.yaml", 3, 10)
    assert "U+0000" in problem.message and problem.hint is not None


def test_a_nul_byte_after_multibyte_text_is_located(loader: str) -> None:
    problem = only_problem("name: héhé\nsteps: ok\x00\n")
    assert (problem.line, problem.column) == (2, 10)


def test_other_parser_failures_are_problems_not_tracebacks(loader: str) -> None:
    for text in ("name: x\n\x1b[2J\n", "name: [x\n", "a: *nowhere\n", "? [a]\n: b\n", "!!binary x\n"):
        with pytest.raises(WorkflowFileError) as caught:
            parse_workflow(text, source="odd.yaml")
        assert all(p.file == "odd.yaml" for p in caught.value.problems), text


def test_files_over_the_size_cap_are_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(steps_yaml(50), encoding="utf-8")
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(path)
    problem = caught.value.problems[0]
    assert problem.file == str(path) and "larger than 1000 bytes" in problem.message
    assert problem.hint is not None and MAX_BYTES_ENV in problem.hint
    monkeypatch.setenv(MAX_BYTES_ENV, str(path.stat().st_size))
    assert len(load_workflow(path).steps) == 50
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    with pytest.raises(WorkflowFileError, match=f"{MAX_BYTES_ENV} must be a positive number"):
        load_workflow(path)


def test_limits_can_be_given_in_code() -> None:
    with pytest.raises(WorkflowFileError, match="larger than 10 bytes"):
        read_yaml("name: a long name\n", "f.yaml", limits=YamlLimits(max_bytes=10))
    with pytest.raises(WorkflowFileError, match="nest more than 2 levels"):
        read_yaml("a: [[[1]]]\n", "f.yaml", limits=YamlLimits(max_depth=2))
    with pytest.raises(WorkflowFileError, match="more than 0 values beyond the 7 the file writes out"):
        read_yaml("a: &a [1, 2, 3, 4]\nb: [*a, *a]\n", "f.yaml", limits=YamlLimits(max_alias_values=0))
    with pytest.raises(WorkflowFileError, match="aliases add more than 1000 characters of text"):
        long_text = "x" * 400
        read_yaml(f"a: &a {long_text}\nb: [*a, *a, *a]\n", "f.yaml", limits=YamlLimits(max_bytes=1000))


def test_safe_load_for_front_matter_counts_lines_in_the_real_file() -> None:
    assert safe_load("title: T\ninputs: {HOST: web}\n") == {"title": "T", "inputs": {"HOST": "web"}}
    with pytest.raises(WorkflowFileError) as caught:
        safe_load(billion_laughs(), "guide.md", first_line=2)
    assert (caught.value.problems[0].file, caught.value.problems[0].line) == ("guide.md", 5)
    with pytest.raises(WorkflowFileError) as caught:
        safe_load("a: 1\nb: [\n", "guide.md", first_line=2)
    assert caught.value.problems[0].line is not None and caught.value.problems[0].line >= 3
