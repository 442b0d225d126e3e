"""MCP servers from the command line: a workflow's ``mcp_servers:`` under ``stepweave run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

from .conftest import server_argv


def _run(*args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(app, ["run", *args, "--json", "--no-journal"])
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def _flow(tmp_path: Path, steps: str) -> Path:
    argv = json.dumps(server_argv())
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"name: mcp-demo\nmcp_servers:\n  t: {{command: {argv}, env: {{GREETING: hello}}}}\n"
        f"steps:\n{steps}outputs:\n  total: ${{{{ steps.sum.output.total }}}}\n"
    )
    return flow


def test_a_workflow_starts_its_servers_and_calls_their_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = _flow(
        tmp_path,
        "  - {id: sum, tool: t.add, args: {a: 20, b: 22}}\n"
        "  - {id: greeting, tool: t.env, args: {name: GREETING}}\n"
        "  - {id: loud, tool: t.shout, args: {text: '${{ steps.greeting.output.result }}'}}\n",
    )
    code, lines, stderr = _run(str(flow), "--yes")
    assert code == 0, stderr
    ended = {e["task_id"]: e for e in lines if e.get("event") == "task_ended"}
    assert ended["loud"]["output"] == "HELLO"
    assert lines[-1] == {"event": "workflow_outputs", "outputs": {"total": 42}}


def test_arguments_that_do_not_fit_the_servers_schema_name_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = _flow(tmp_path, "  - {id: sum, tool: t.add, args: {a: 1, c: 2}}\n")
    code, _, stderr = _run(str(flow))
    assert code == 1
    assert (
        f"{flow}:5:" in stderr
        and "unknown argument 'c'" in stderr
        and "missing required argument 'b'" in stderr
    )
