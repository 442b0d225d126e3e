"""MCP servers from the command line: a workflow's ``mcp_servers:`` under ``stepweave run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_server: str
) -> None:
    monkeypatch.chdir(tmp_path)
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"name: bad-args\nmcp_servers:\n  t: {{url: '{http_server}'}}\nsteps:\n"
        "  - {id: sum, tool: t.add, args: {a: 1, c: 2}}\n"
    )
    code, _, stderr = _run(str(flow))
    assert code == 1
    assert f"{flow}:5:" in stderr
    assert "unknown argument 'c'" in stderr and "missing required argument 'b'" in stderr


def test_mcp_options_are_argv_never_a_shell_line() -> None:
    from orchestrator.cli.mcp_client import parse_mcp_options

    server, web = parse_mcp_options(["s=python -m srv 'a b' ; rm -rf x", "w=http://127.0.0.1:1/mcp"])
    assert server.command == ("python", "-m", "srv", "a b", ";", "rm", "-rf", "x")  # words, not a script
    assert web.url == "http://127.0.0.1:1/mcp" and not web.command
    for bad in (["s=a", "s=b"], ["nothing"], ["a.b=x"], ["s="]):
        with pytest.raises(typer.BadParameter):
            parse_mcp_options(bad)
