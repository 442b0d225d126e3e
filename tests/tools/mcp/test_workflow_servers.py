"""``mcp_servers:`` in a workflow file: checked with file and line; steps may call
``SERVER.TOOL`` before the server runs (checked again once it does)."""

from __future__ import annotations

import pytest

from planners import WorkflowFileError, parse_workflow
from tools.builtin import builtin_registry

FLOW = """\
name: with-mcp
mcp_servers:
  notes: {command: [python, notes.py], env: {NOTES: /tmp}}
  web: {url: "http://127.0.0.1:9/mcp"}
steps:
  - {id: find, tool: notes.search, args: {query: disk}}
  - {id: typo, tool: nots.search}
"""


def test_steps_may_call_tools_of_declared_servers_before_they_run() -> None:
    workflow = parse_workflow(FLOW, source="flow.yaml")
    messages = [str(problem) for problem in workflow.problems(builtin_registry())]
    assert len(messages) == 1 and messages[0].startswith("flow.yaml:7:")
    assert "unknown tool 'nots.search'" in messages[0]
    servers = workflow.start_mcp_servers().servers
    assert [(s.name, s.command, dict(s.env), s.url) for s in servers] == [
        ("notes", ("python", "notes.py"), {"NOTES": "/tmp"}, None),
        ("web", (), {}, "http://127.0.0.1:9/mcp"),
    ]


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        ("{command: [a], url: 'http://x/mcp'}", 3, "give either command: [argv...] (stdio) or url"),
        ("{}", 3, "give either command"),
        ("{url: 'ftp://x'}", 3, "url must start with http:// or https://"),
        ("{command: []}", 3, "command"),
        ("{command: a b}", 3, "command"),
        ("{command: [a], shell: true}", 3, "unknown key 'shell'"),
    ],
)
def test_bad_server_entries_name_file_and_line(entry: str, line: int, message: str) -> None:
    text = f"name: x\nmcp_servers:\n  s: {entry}\nsteps:\n  - {{id: a, tool: s.t}}\n"
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(text, source="bad.yaml")
    shown = [str(p) for p in caught.value.problems]
    assert any(p.startswith(f"bad.yaml:{line}:") and message in p for p in shown), shown


def test_a_server_name_cannot_hold_a_dot() -> None:
    with pytest.raises(WorkflowFileError) as caught:
        parse_workflow(
            "name: x\nmcp_servers:\n  a.b: {url: 'http://x/mcp'}\nsteps: [{id: a, tool: t}]\n", "d.yaml"
        )
    assert str(caught.value.problems[0]).startswith("d.yaml:3:")
