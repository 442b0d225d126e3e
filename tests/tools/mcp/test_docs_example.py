"""docs/integrations.md's MCP example stays true: its workflow is examples/mcp-warehouse.yaml,
its command prints the outputs it shows, and its Python block prints what it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "integrations.md").read_text()


def _block(lang: str, containing: str) -> str:
    blocks = [m.group(1) for m in re.finditer(rf"^```{lang}\n(.*?)^```$", DOC, re.M | re.S)]
    return next(block for block in blocks if containing in block)


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The reader's shell: at the repository's root, with this Python first on PATH."""
    monkeypatch.chdir(ROOT)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    monkeypatch.setenv("PATH", path)
    monkeypatch.setenv("STEPWEAVE_JOURNAL", str(tmp_path / "journal.sqlite3"))
    return {"PATH": path, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}


def test_the_workflow_shown_is_the_example_and_runs_as_shown(in_repo: dict[str, str]) -> None:
    shown = _block("yaml", "mcp_servers:")
    assert shown == (ROOT / "examples" / "mcp-warehouse.yaml").read_text()
    (command,) = [line for line in _block("bash", "mcp-warehouse").splitlines() if line.strip()]
    argv = command.split()
    assert argv[:2] == ["stepweave", "run"]
    result = CliRunner().invoke(app, argv[1:])
    assert result.exit_code == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])
    assert last == {"event": "workflow_outputs", "outputs": json.loads(_block("json", "in_stock"))}


def test_the_python_example_prints_what_the_guide_says(in_repo: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(_block("python", "mcp_tools"))
    said = re.search(r"It prints `([^`]+)`", DOC)
    assert said is not None
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=in_repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == said.group(1)
