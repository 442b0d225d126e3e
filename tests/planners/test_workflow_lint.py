"""``Workflow.warnings()``: an expression pasted into a shell script or an SQL query is
flagged at its line, with the way to pass the value as data (security review, finding 19)."""

from __future__ import annotations

import textwrap

import pytest

from planners import parse_workflow


def warnings_of(steps: str) -> list[str]:
    text = "name: lint\ninputs:\n  host: {type: string, default: localhost}\nsteps:\n" + textwrap.indent(
        textwrap.dedent(steps), "  "
    )
    return [str(w) for w in parse_workflow(text, source="flow.yaml").warnings()]


@pytest.mark.parametrize(
    "argv",
    [
        '[sh, -c, "echo checking ${{ inputs.host }}"]',
        '[bash, -ec, "ping ${{ inputs.host }}"]',
        '[/bin/bash, -o, pipefail, -c, "ping ${{ inputs.host }} | head"]',
        '[env, -i, "A=1", zsh, -c, "ping ${{ inputs.host }}"]',
        '[busybox, sh, -c, "ping ${{ inputs.host }}"]',
        "[python3, -c, \"print('${{ inputs.host }}')\"]",
        '[perl, -e, "print q(${{ inputs.host }})"]',
    ],
)
def test_an_expression_in_a_script_is_flagged(argv: str) -> None:
    (warning,) = warnings_of(f"- id: ping\n  tool: shell\n  args:\n    argv: {argv}\n")
    assert warning.startswith("flow.yaml:8:")
    assert "step 'ping': warning: args.argv[" in warning
    assert "is pasted into a `" in warning and "runs as code" in warning
    assert "set_env" in warning  # the fix


@pytest.mark.parametrize(
    "args",
    [
        '{argv: [echo, "${{ inputs.host }}"]}',  # its own argv item: data, not code
        '{argv: [ls, "${{ inputs.host }}"]}',
        '{argv: [sh, -c, "ping \\"$HOST\\"", sh], set_env: {HOST: "${{ inputs.host }}"}}',
        '{argv: [sh, -c, "ping \\"$1\\"", sh, "${{ inputs.host }}"]}',  # a positional parameter
        '{argv: [sh, script.sh, "${{ inputs.host }}"]}',
        '{argv: [grep, -c, "${{ inputs.host }}", log.txt]}',  # -c of another program
    ],
)
def test_values_passed_as_data_are_not_flagged(args: str) -> None:
    assert warnings_of(f"- id: ok\n  tool: shell\n  args: {args}\n") == []


def test_a_shell_reading_its_script_from_stdin_and_sql_queries() -> None:
    found = warnings_of(
        """\
        - id: piped
          tool: shell
          args: {argv: [bash, -s], stdin: "ping ${{ inputs.host }}"}
        - id: query
          tool: sql
          args: {path: db.sqlite, query: "SELECT * FROM hosts WHERE name = '${{ inputs.host }}'"}
        - id: bound
          tool: sql
          args: {path: db.sqlite, query: "SELECT * FROM hosts WHERE name = ?", params: ["${{ inputs.host }}"]}
        """
    )
    assert len(found) == 2
    assert found[0].startswith("flow.yaml:7:") and "args.stdin" in found[0]
    assert found[1].startswith("flow.yaml:10:") and "an SQL query" in found[1] and "params" in found[1]


def test_warnings_are_not_problems() -> None:
    text = 'name: x\nsteps:\n  - {id: a, tool: shell, args: {argv: [sh, -c, "echo ${{ 1 }}"]}}\n'
    workflow = parse_workflow(text)
    assert workflow.problems() == []
    (warning,) = workflow.warnings()
    assert warning.severity == "warning" and warning.step == "a"
    assert workflow.to_graph().tasks["a"].args["argv"][2] == "echo ${{ 1 }}"
