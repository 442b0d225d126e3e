"""The SDK is optional: nothing imports it until a server starts, and without it the
error says which extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.mcp import McpUnavailableError, mcp_tools

ROOT = Path(__file__).resolve().parents[3]


async def test_without_the_sdk_starting_a_server_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # what `import mcp` sees when it is not installed
    with pytest.raises(McpUnavailableError, match=r"pip install 'stepweave\[mcp\]'"):
        async with mcp_tools("x", command=["never-started"]):
            pass


def test_the_commands_and_the_workflow_model_do_not_import_the_sdk() -> None:
    code = (
        "import sys, tools.mcp, planners, orchestrator.cli.running, orchestrator.cli.planner, "
        "orchestrator.cli.devices; print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"
