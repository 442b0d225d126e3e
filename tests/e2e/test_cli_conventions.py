"""The command line follows the conventions of gh, kubectl and uv, and starts fast: a
command imports only what it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli import COMMANDS, app

from .test_cli import cli

HEAVY = ("networkx", "orchestrator.report", "orchestrator.devices", "planners.tsg", "orchestrator.events")


def _imported_by(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    modules = json.loads(proc.stdout.splitlines()[-1])
    return [name for name in modules if name.startswith(HEAVY)]


def test_importing_the_entry_point_imports_no_command() -> None:
    assert _imported_by("import orchestrator.cli") == []


def test_help_and_validate_import_neither_devices_nor_reports(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: f\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: [echo, hi]}\n")
    for args in (["--help"], ["validate", str(flow)]):
        code = (
            "import sys\nfrom orchestrator.cli import app\n"
            f"try:\n    app({args!r})\nexcept SystemExit as exit:\n    assert not exit.code, exit.code"
        )
        assert _imported_by(code) == [], args


def test_the_help_listing_matches_each_command() -> None:
    """``COMMANDS`` holds each command's module and the line --help shows: both right."""
    for name, entry in COMMANDS.items():
        family = typer.Typer()
        __import__(f"orchestrator.cli.{entry.module}", fromlist=["register"]).register(family)
        command = typer.main.get_group(family).commands[name]
        first = (command.help or "").strip().split("\n\n")[0]
        assert " ".join(first.split()) == entry.help, name


def test_version_and_short_help() -> None:
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("stepweave 0.")
    short = cli("-h")
    assert short.returncode == 0 and "Usage: stepweave [OPTIONS] COMMAND" in short.stdout
    assert "--install-completion" in short.stdout  # typer's built-in completion install


@pytest.mark.parametrize(
    ("command", "usage", "shown"),
    [
        (
            ["run"],
            "stepweave run [OPTIONS] FLOW",
            ["--tools MODULE", "--set NAME=VALUE", "--max-concurrency N"],
        ),
        (["validate"], "stepweave validate [OPTIONS] FLOW", ["--tools MODULE"]),
        (["resume"], "stepweave resume [OPTIONS] RUN_ID", ["--journal PATH|URL"]),
        (["runs", "show"], "stepweave runs show [OPTIONS] RUN_ID", []),
        (["tsg", "run"], "stepweave tsg run [OPTIONS] GUIDE", ["--broker URL"]),
        (["ask"], "stepweave ask [OPTIONS] REQUEST", ["--broker URL"]),
    ],
)
def test_help_shows_metavars_not_types(command: list[str], usage: str, shown: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "-h"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert usage in text
    for option in shown:
        option_name, metavar = option.split()
        assert f"{option_name} {metavar}" in text, option
    for raw in ("{", "<bool>", "<list[", "range>", "``"):
        assert raw not in text, raw


#: What a ``validate`` that succeeds into a pipe does not import or build: Rich (its line is
#: printed plainly), asyncio (the shell and wait tools import it where they run programs)
#: and the validator of ``GraphEdit`` (built on first use).
LAZY_FOR_VALIDATE = ("rich", "asyncio")


def _validate_in_child(flow: Path, env: dict[str, str] | None = None) -> tuple[str, list[str], bool]:
    """Output of ``stepweave validate flow`` in a fresh interpreter (stdout a pipe), the lazy
    modules it imported, and whether ``GraphEdit`` was built."""
    code = (
        "import json, sys\nfrom orchestrator.cli import app\n"
        f"try:\n    app(['validate', {str(flow)!r}])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "from orchestrator.graph import GraphEdit\n"
        f"lazy = sorted(m for m in sys.modules if m.split('.')[0] in {LAZY_FOR_VALIDATE!r})\n"
        "print(json.dumps([lazy, GraphEdit.__pydantic_complete__]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    *shown, last = proc.stdout.splitlines()
    lazy, built = json.loads(last)
    return "\n".join(shown), lazy, built


def test_validate_into_a_pipe_imports_neither_rich_nor_asyncio(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "name: f\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: [echo, hi]}\n"
        "  - id: b\n    tool: wait\n    args: {seconds: 0}\n    needs: a\n"
    )
    shown, lazy, built = _validate_in_child(flow)
    assert shown == f"✔ {flow}: 2 steps, valid"
    assert lazy == [] and not built


def test_validate_keeps_its_colour_where_forced(tmp_path: Path) -> None:
    """FORCE_COLOR makes Rich colour a pipe: then the line goes through Rich as before."""
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: f\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: [echo, hi]}\n")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"FORCE_COLOR": "1", "COLUMNS": "300"}
    shown, lazy, _ = _validate_in_child(flow, env)
    assert shown == f"\x1b[32m✔\x1b[0m {flow}: 1 step, valid"
    assert "rich" in lazy
