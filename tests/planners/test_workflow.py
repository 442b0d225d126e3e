"""YAML workflows: loading, every kind of mistake located at file:line:column and step,
conversion to a TaskGraph, a real run, outputs, and the JSON Schema for editors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import DeviceTarget, LabelsTarget, Orchestrator, TaskStatus, WorkflowError
from planners import (
    Problem,
    Workflow,
    WorkflowFileError,
    load_workflow,
    parse_workflow,
    workflow_json_schema,
)
from tools import ToolRegistry, tool


@tool
async def echo(text: str) -> str:
    """Return the text."""
    return text


@tool
def measure(path: str) -> int:
    """Length of a path (a stand-in for a file size)."""
    return len(path)


@tool
async def add(x: int, y: int) -> int:
    """Add two integers."""
    return x + y


TOOLS = ToolRegistry([echo, measure, add])

GOOD = """\
name: health
description: Probe a host and add up sizes
inputs:
  host: {type: string, default: "127.0.0.1", description: Host to probe}
  files: {type: array, default: ["a.log", "bb.log"]}
  threshold: {type: number, default: 0.9}
  verbose: {type: boolean}
defaults:
  timeout: 30
  retries: 1
  target: local
steps:
  - id: probe
    tool: echo
    args: {text: "ping ${{ inputs.host }}"}
  - id: sizes
    tool: measure
    for_each: ${{ inputs.files }}
    args: {path: "${{ item }}"}
    retries: 0
  - id: total
    tool: add
    needs: probe
    args:
      x: ${{ steps.sizes.output[0] }}
      y: ${{ steps.sizes.output[1] }}
    timeout: 5
    backoff: 0.5
  - id: page
    tool: echo
    needs: [total]
    when: ${{ steps.total.output > 100 }}
    args: {text: paging}
    needs_approval: true
outputs:
  greeting: ${{ steps.probe.output }}
  total: ${{ steps.total.output }}
  paged: ${{ steps.page.status }}
  summary: {host: "${{ inputs.host }}", sizes: "${{ steps.sizes.output }}"}
"""


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path) -> WorkflowFileError:
    with pytest.raises(WorkflowFileError) as caught:
        load_workflow(path)
    return caught.value


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def line_of_text(path: Path, needle: str) -> int:
    """The 1-based line of the first occurrence of ``needle`` (so tests don't hard-code lines)."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


# -- a good workflow ---------------------------------------------------------------------


def test_good_workflow_loads_with_its_parts(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    wf = load_workflow(path)
    assert isinstance(wf, Workflow)
    assert (wf.name, wf.description, wf.source) == ("health", "Probe a host and add up sizes", str(path))
    assert list(wf.inputs) == ["host", "files", "threshold", "verbose"]
    assert wf.inputs["verbose"].required and not wf.inputs["host"].required
    assert [s.id for s in wf.steps] == ["probe", "sizes", "total", "page"]
    assert wf.steps[2].needs == ["probe"]  # a single id is a list of one
    assert set(wf.outputs) == {"greeting", "total", "paged", "summary"}
    assert wf.problems(TOOLS) == []
    assert wf.line_of("total") == line_of_text(path, "- id: total")


def test_to_graph_applies_defaults_policy_and_needs(tmp_path: Path) -> None:
    graph = load_workflow(write(tmp_path, GOOD)).to_graph()
    assert graph.name == "health"
    assert list(graph.tasks) == ["probe", "sizes", "total", "page"]
    probe, sizes, total, page = (graph[t] for t in ("probe", "sizes", "total", "page"))
    assert (probe.timeout, probe.retries, probe.backoff, probe.target) == (30, 1, None, "local")
    assert (sizes.retries, sizes.for_each) == (0, "${{ inputs.files }}")
    assert (total.timeout, total.retries, total.backoff, total.deps) == (5, 1, 0.5, ("probe",))
    assert total.dependencies == {"probe", "sizes"}  # needs plus the expression references
    assert page.needs_approval is True and page.deps == ("total",)
    assert page.when == "${{ steps.total.output > 100 }}"


async def test_runs_on_the_orchestrator_and_outputs_evaluate(tmp_path: Path) -> None:
    wf = load_workflow(write(tmp_path, GOOD))
    inputs = wf.resolve_inputs({"verbose": "yes"}, from_strings=True)
    assert inputs == {"host": "127.0.0.1", "files": ["a.log", "bb.log"], "threshold": 0.9, "verbose": True}
    result = await Orchestrator(tools=TOOLS).run(wf.to_graph(), inputs=inputs)
    assert result.ok, result.error
    assert result["page"].status is TaskStatus.SKIPPED
    assert wf.evaluate_outputs(result, inputs) == {
        "greeting": "ping 127.0.0.1",
        "total": 11,
        "paged": "skipped",
        "summary": {"host": "127.0.0.1", "sizes": [5, 6]},
    }


async def test_output_of_a_skipped_step_names_the_output_and_why(tmp_path: Path) -> None:
    text = GOOD.replace("paged: ${{ steps.page.status }}", "paged: ${{ steps.page.output.upper() }}")
    path = write(tmp_path, text)
    wf = load_workflow(path)
    inputs = wf.resolve_inputs({"verbose": False})
    result = await Orchestrator(tools=TOOLS).run(wf.to_graph(), inputs=inputs)
    with pytest.raises(WorkflowFileError) as caught:
        wf.evaluate_outputs(result, inputs)
    problem = only(caught.value.problems)
    assert (problem.file, problem.line) == (str(path), line_of_text(path, "paged:"))
    assert "output 'paged'" in problem.message and problem.hint is not None
    assert "step 'page' skipped" in problem.hint


async def test_for_each_over_a_non_list_fails_the_step_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: fan
        inputs:
          files: {type: string, default: "a.log"}
        steps:
          - id: first
            tool: echo
            args: {text: hi}
          - id: sizes
            tool: measure
            for_each: ${{ inputs.files }}
            args: {path: "${{ item }}"}
        """,
    )
    wf = load_workflow(path)
    assert wf.problems(TOOLS) == []
    result = await Orchestrator(tools=TOOLS, failure_policy="continue").run(
        wf.to_graph(), inputs=wf.resolve_inputs()
    )
    sizes = result["sizes"]
    assert sizes.status is TaskStatus.FAILED
    assert sizes.error is not None and "must evaluate to a list" in sizes.error.message
    assert wf.line_of("sizes") == 8
    assert wf.line_of("sizes[3]") == 8  # a fanned-out item maps to its step
    assert wf.line_of("nope") is None


def test_targets_and_yaml_1_2_scalars(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            """\
            name: targets
            defaults: {target: any-device}
            steps:
              - &a {id: a, tool: echo, args: {text: no}, target: {device: dev-1}}
              - {<<: *a, id: b, args: {text: 12:30}, target: {labels: {site: lab}}}
              - {id: c, tool: echo, args: {text: 010}, when: false}
            """,
        )
    )
    graph = wf.to_graph()
    assert graph["a"].target == DeviceTarget(device="dev-1")
    assert graph["b"].target == LabelsTarget(labels={"site": "lab"})
    assert graph["c"].target == "any-device"
    # YAML 1.1 would read these as False, 750 and 8.
    assert [graph[t].args["text"] for t in "abc"] == ["no", "12:30", "010"]
    assert graph["c"].when == "${{ false }}"


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)


@given(st.lists(_JSON_SCALARS, max_size=8))
def test_values_written_by_yaml_safe_dump_read_back_unchanged(values: list[Any]) -> None:
    # Generated workflows (the TSG compiler's) go through PyYAML's emitter: the YAML 1.2
    # scalar rules must read back exactly what it wrote, strings that look like numbers too.
    text = yaml.safe_dump({"name": "gen", "steps": [{"id": "a", "tool": "echo", "args": {"v": values}}]})
    assert parse_workflow(text).steps[0].args["v"] == values


# -- mistakes, each located ----------------------------------------------------------------


def test_invalid_yaml_shows_the_parser_position_and_a_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: broken
        steps:
          - id: sizes
            tool: measure
            args: {path: ${{ item }}}
        """,
    )
    problem = only(load_error(path).problems)
    assert (problem.file, problem.line, problem.column) == (str(path), 5, 19)
    assert problem.message.startswith("invalid YAML:")
    assert problem.hint is not None and "quote" in problem.hint
    assert str(problem).startswith(f"{path}:5:19: invalid YAML:")


def test_tabs_and_extra_documents_get_hints(tmp_path: Path) -> None:
    tabs = only(load_error(write(tmp_path, "name: x\nsteps:\n\t- id: a\n", "tabs.yaml")).problems)
    assert tabs.line == 3 and tabs.hint is not None and "tabs" in tabs.hint
    docs = only(load_error(write(tmp_path, "name: x\n---\nname: y\n", "docs.yaml")).problems)
    assert docs.line == 2 and docs.hint is not None and "one document" in docs.hint


def test_alias_bombs_stop_early(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    problem = only(load_error(write(tmp_path, "\n".join(lines) + "\n")).problems)
    assert problem.line is not None and "aliases add more than" in problem.message


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    problem = only(load_error(write(tmp_path, "- id: a\n  tool: echo\n")).problems)
    assert (problem.line, problem.column) == (1, 1)
    assert "must be a mapping, not a list" in problem.message
    empty = only(load_error(write(tmp_path, "# nothing yet\n", "empty.yaml")).problems)
    assert "empty" in empty.message


def test_unknown_keys_suggest_the_right_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: typos
        stepz: []
        steps:
          - id: disk
            tool: echo
            retrys: 2
            if: ${{ true }}
            args: {text: hi}
        """,
    )
    problems = load_error(path).problems
    assert [(p.line, p.column, p.step, p.message, p.hint) for p in problems] == [
        (2, 1, None, "unknown key 'stepz'", "did you mean 'steps'?"),
        (6, 5, "disk", "unknown key 'retrys'", "did you mean 'retries'?"),
        (7, 5, "disk", "unknown key 'if'", "did you mean 'when'?"),
    ]
    assert str(problems[1]) == f"{path}:6:5: step 'disk': unknown key 'retrys' (did you mean 'retries'?)"


def test_wrong_types_in_the_file_are_all_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: types
        inputs:
          count: {type: integer, default: many}
          bad-name: {type: str}
        defaults:
          timeout: -1
        steps:
          - id: a
            tool: echo
            target: remote
          - just-a-string
          - tool: echo
        """,
    )
    problems = load_error(path).problems
    rendered = [str(p) for p in problems]
    assert rendered == [
        f"{path}:3:35: inputs.count.default: default must be an integer, got 'many'",
        f"{path}:4:3: invalid name 'bad-name' (an input name starts with a letter or '_' and has only "
        "letters, digits and '_' (expressions read it as inputs.<name>))",
        f"{path}:4:20: inputs.bad-name.type: must be 'string', 'integer', 'number', 'boolean', "
        "'array' or 'object'; got 'str'",
        f"{path}:6:12: defaults.timeout: must be greater than 0; got -1",
        f"{path}:10:13: step 'a': target: target must be 'local', 'any-device', {{device: <id>}} or "
        "{labels: {<name>: <value>}}, got 'remote'",
        f"{path}:11:5: steps[1]: must be a mapping (key: value), got a string; got 'just-a-string'",
        f"{path}:12:5: missing required key 'id'",
    ]


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nsteps:\n  - id: a\n    tool: echo\n    tool: add\n")
    problem = only(load_error(path).problems)
    assert (problem.line, problem.column, problem.message) == (5, 5, "duplicate key 'tool'")
    assert problem.hint == "first at line 4"


def test_unknown_tool(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsteps:\n  - id: fetch\n    tool: ecko\n    args: {text: hi}\n")
    wf = load_workflow(path)
    assert wf.problems() == []  # tools are checked only when given
    problem = only(wf.problems(TOOLS))
    # Problems found in the graph are placed at the step's first line.
    assert (problem.file, problem.line, problem.column, problem.step) == (str(path), 3, 5, "fetch")
    assert str(problem).startswith(f"{path}:3:5: step 'fetch': unknown tool 'ecko' (did you mean 'echo'?)")


def test_unknown_step_in_an_expression_or_in_needs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: refs
        steps:
          - id: probe
            tool: echo
            args: {text: hi}
          - id: use
            tool: echo
            needs: [prob]
            args:
              text: ${{ steps.prbe.output }}
        """,
    )
    problems = load_workflow(path).problems(TOOLS)
    assert [(p.line, p.column, p.step) for p in problems] == [(6, 5, "use"), (6, 5, "use")]
    assert problems[0].message == "needs unknown step 'prob' (did you mean 'probe'?)"
    assert problems[1].message == "args.text references unknown step 'prbe' (did you mean 'probe'?)"


def test_unknown_input_in_an_expression(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: refs
        inputs:
          host: {default: example.org}
        steps:
          - id: probe
            tool: echo
            args: {text: "${{ inputs.hots }}"}
        outputs:
          where: ${{ inputs['hots'] }}
        """,
    )
    problems = load_workflow(path).problems(TOOLS)
    assert [(p.line, p.step, p.message, p.hint) for p in problems] == [
        (5, "probe", "args.text uses unknown input 'hots'", "did you mean 'host'?"),
        (9, None, "output 'where' uses unknown input 'hots'", "did you mean 'host'?"),
    ]


def test_cycle(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: loop
        steps:
          - id: a
            tool: echo
            needs: [b]
            args: {text: hi}
          - id: b
            tool: echo
            args: {text: "${{ steps.a.output }}"}
        """,
    )
    problem = only(load_workflow(path).problems(TOOLS))
    assert (problem.line, problem.column, problem.step) == (7, 5, "b")
    assert problem.message == "cycle: b -> a -> b" and problem.hint is not None
    with pytest.raises(WorkflowFileError, match=re.escape(f"{path}:7:5: step 'b': cycle: b -> a -> b")):
        load_workflow(path).to_graph()


def test_wrong_argument_type_and_unknown_argument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: args
        steps:
          - id: sum
            tool: add
            args:
              x: many
              y: 2
              z: 3
        """,
    )
    problems = load_workflow(path).problems(TOOLS)
    assert [(p.line, p.column, p.step) for p in problems] == [(3, 5, "sum"), (3, 5, "sum")]
    messages = sorted(p.message for p in problems)
    assert messages[0].startswith("tool 'add': argument 'x': must be a valid integer")
    assert messages[1].startswith("tool 'add': unknown argument 'z'")


def test_duplicate_step_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: dup
        steps:
          - id: probe
            tool: echo
            args: {text: a}
          - id: probe
            tool: echo
            args: {text: b}
        """,
    )
    problem = only(load_workflow(path).problems(TOOLS))
    assert (problem.file, problem.line, problem.column, problem.step) == (str(path), 6, 5, "probe")
    assert "duplicate step id" in problem.message and problem.hint == "the first is at line 3"


def test_every_problem_at_once_and_to_graph_lists_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: many
        steps:
          - id: a
            tool: echo
            args: {text: "${{ steps.nope.output }}"}
          - id: a
            tool: echo
            args: {text: "${{ steps.a.output | nosuchfilter }}"}
          - id: c
            tool: echo
            needs: [zzz]
            when: ${{ item }}
        outputs:
          out: ${{ steps.missing.output }}
        """,
    )
    wf = load_workflow(path)
    with pytest.raises(WorkflowFileError) as caught:
        wf.to_graph()
    error = caught.value
    assert isinstance(error, WorkflowError) and isinstance(error, ValueError)
    assert [p.line for p in error.problems] == [3, 6, 9, 9, 14]
    lines = str(error).splitlines()
    assert len(lines) == 5 and all(line.startswith(f"{path}:") for line in lines)


def test_unparsable_expression_is_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: parse
        steps:
          - id: a
            tool: echo
            args:
              text: "${{ steps[ }}"
          - id: b
            tool: echo
            args:
              text: "${{ steps.a.output | nosuchfilter }}"
        """,
    )
    problems = load_workflow(path).problems(TOOLS)
    assert [(p.line, p.step) for p in problems] == [(3, "a"), (7, "b")]
    assert problems[0].message.startswith("args.text: cannot parse '${{ steps[ }}'")
    assert "nosuchfilter" in problems[1].message


# -- inputs ------------------------------------------------------------------------------


def test_resolve_inputs_parses_strings_by_declared_type(tmp_path: Path) -> None:
    wf = parse_workflow(
        textwrap.dedent(
            """\
        name: typed
        inputs:
          n: {type: integer, default: 1}
          ratio: {type: number, default: 0.5}
          on: {type: boolean, default: false}
          names: {type: array, default: []}
          opts: {type: object, default: {}}
          text: {default: hi}
        steps: [{id: a, tool: echo, args: {text: x}}]
        """
        ),
        source="typed.yaml",
    )
    values = wf.resolve_inputs(
        {"n": "3", "ratio": "2.5", "on": "Yes", "names": '["a", "b"]', "opts": '{"k": 1}', "text": "42"},
        from_strings=True,
    )
    assert values == {"n": 3, "ratio": 2.5, "on": True, "names": ["a", "b"], "opts": {"k": 1}, "text": "42"}
    defaults = wf.resolve_inputs()
    defaults["names"].append("mutated")
    assert wf.resolve_inputs()["names"] == []  # each call gets its own copy of a default


def test_bad_input_overrides_name_the_file_line_and_input(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: inputs
        inputs:
          host: {type: string, default: example.org}
          port: {type: integer}
          token: {type: string}
        steps:
          - id: a
            tool: echo
            args: {text: "${{ inputs.host }}:${{ inputs.port }}"}
        """,
    )
    wf = load_workflow(path)
    with pytest.raises(WorkflowFileError) as caught:
        wf.resolve_inputs({"hots": "x", "port": "eighty"}, from_strings=True)
    rendered = [str(p) for p in caught.value.problems]
    assert rendered == [
        f"{path}:2:1: unknown input 'hots' (did you mean 'host'?)",
        f"{path}:4:9: input 'port' must be an integer, got 'eighty'",
        f"{path}:5:10: missing required input 'token' (give it with --set token=VALUE)",
    ]
    with pytest.raises(WorkflowFileError, match="input 'port' must be an integer, got '80'"):
        wf.resolve_inputs({"port": "80", "token": "t"})  # not from strings: types must match


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("boolean", "maybe", "must be a boolean"),
        ("array", "[1,", "must be an array written as JSON"),
        ("array", '{"a": 1}', "must be an array, got"),
        ("number", "nan", "must be a finite number"),
    ],
)
def test_unparsable_input_strings(kind: str, text: str, expected: str) -> None:
    wf = parse_workflow(f"name: x\ninputs:\n  v: {{type: {kind}}}\nsteps: [{{id: a, tool: echo}}]\n")
    with pytest.raises(WorkflowFileError, match=re.escape(expected)):
        wf.resolve_inputs({"v": text}, from_strings=True)


def test_load_errors_for_missing_files(tmp_path: Path) -> None:
    problem = only(load_error(tmp_path / "absent.yaml").problems)
    assert problem.file == str(tmp_path / "absent.yaml") and "cannot read" in problem.message


# -- JSON Schema -----------------------------------------------------------------------------


def _validate(schema: dict[str, Any] | bool, value: Any, root: dict[str, Any], where: str = "$") -> list[str]:
    """A small JSON Schema checker for the keywords pydantic emits (no runtime dependency)."""
    if isinstance(schema, bool):
        return [] if schema else [f"{where}: not allowed"]
    if "$ref" in schema:
        return _validate(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], value, root, where)
    if "anyOf" in schema:
        options = [_validate(option, value, root, where) for option in schema["anyOf"]]
        return [] if any(not o for o in options) else [f"{where}: matches no option"]
    types: dict[str, type | tuple[type, ...]] = {
        "string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
        "null": type(None),
    }  # fmt: skip
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        errors = [f"{where}: missing {k}" for k in schema.get("required", []) if k not in value]
        for key, item in value.items():
            sub = schema.get("properties", {}).get(key, schema.get("additionalProperties", {}))
            errors += _validate(sub, item, root, f"{where}.{key}")
        return errors
    if kind is not None and not isinstance(value, types[kind]):
        return [f"{where}: not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: not in enum"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{where}: does not match {schema['pattern']}"]
    if kind == "array" and "items" in schema:
        return [e for i, v in enumerate(value) for e in _validate(schema["items"], v, root, f"{where}[{i}]")]
    return []


EXAMPLE = """\
name: nightly-health
description: Check the fleet and page if something is down
inputs:
  host: {type: string, default: "127.0.0.1", description: "Host to probe"}
  files: {type: array, default: ["a.log", "b.log"]}
  threshold: {type: number, default: 0.9}
defaults:
  timeout: 30
  retries: 1
  target: local
steps:
  - id: disk
    tool: shell
    args: {argv: ["df", "-P", "/"]}
  - id: sizes
    tool: read_file
    for_each: ${{ inputs.files }}
    args: {path: "${{ item }}"}
  - id: page
    tool: shell
    needs: [disk]
    when: ${{ steps.disk.output.exit_code != 0 }}
    args: {argv: ["echo", "paging"]}
    needs_approval: true
outputs:
  disk_report: ${{ steps.disk.output.stdout }}
"""


def test_json_schema_describes_the_format_and_accepts_the_example() -> None:
    schema = workflow_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {
        "name", "description", "inputs", "defaults", "steps", "outputs", "mcp_servers",
    }  # fmt: skip
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"name", "steps"}
    step = schema["$defs"]["Step"]
    assert set(step["properties"]) >= {
        "id", "tool", "args", "needs", "when", "join", "for_each", "timeout", "retries",
        "backoff", "target", "needs_approval", "description",
    }  # fmt: skip
    assert all(p.get("description") for p in step["properties"].values())
    data = yaml.safe_load(EXAMPLE)  # what an editor sees: the file as written
    assert _validate(schema, data, schema) == []
    wrong = {**data, "steps": [{"id": "x", "tool": "t", "retrys": 1}], "extra": 1}
    assert _validate(schema, wrong, schema) == ["$.steps[0].retrys: not allowed", "$.extra: not allowed"]


def test_example_from_the_brief_is_valid_apart_from_its_tools() -> None:
    wf = parse_workflow(EXAMPLE, source="nightly.yaml")
    assert wf.problems() == []
    messages = [str(p) for p in wf.problems(TOOLS)]
    assert messages[0].startswith("nightly.yaml:12:5: step 'disk': unknown tool 'shell'")
    assert len(messages) == 3
