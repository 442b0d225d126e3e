"""The README stays true: every example in it runs as written.

Python blocks run as scripts; YAML blocks must be the example files they show; every
command in a bash block runs (in a copy of ``examples/``), except the install command
and the test command, which are this very test run. ``stepweave ask`` commands run
against the OpenAI-compatible test server with scripted replies.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planners.llm.testing import OpenAITestServer, ScriptedReply

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.DOTALL)
INSTALL = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && "


def commands() -> list[str]:
    lines: list[str] = []
    for block in BASH_BLOCKS:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


COMMANDS = commands()
#: The commands this file runs (the install and test commands are how this run started).
RUNNABLE = [c.removeprefix(INSTALL) for c in COMMANDS if c != "python -m pytest"]


def run_python(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def shell_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["COLUMNS"] = "160"
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_readme_has_the_two_commands() -> None:
    assert COMMANDS[0].startswith(INSTALL), "the first command installs and runs the main example"
    assert COMMANDS[0].removeprefix(INSTALL) == "stepweave run examples/health-check.yaml"
    assert "python -m pytest" in COMMANDS
    assert len(PYTHON_BLOCKS) >= 2 and YAML_BLOCKS


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_first_readme_block_prints_merged_result(tmp_path: Path) -> None:
    script = tmp_path / "first.py"
    script.write_text(PYTHON_BLOCKS[0])
    proc = run_python(script, tmp_path)
    assert "['<html from https://a.example>', '<html from https://b.example>'] succeeded" in proc.stdout


@pytest.mark.parametrize("index", range(len(YAML_BLOCKS)))
def test_readme_yaml_is_the_example_file_it_shows(index: int) -> None:
    block = YAML_BLOCKS[index]
    shown = re.search(r"stepweave run (examples/\S+\.yaml)", block)
    assert shown, "a YAML block names its example file in its header comment"
    assert (ROOT / shown.group(1)).read_text() == block


@pytest.mark.parametrize("command", [c for c in RUNNABLE if not c.startswith("stepweave ask")])
def test_readme_command_runs(command: str, workdir: Path) -> None:
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=workdir, env=shell_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    if "--report" in command:
        report = re.search(r"--report (\S+)", command)
        assert report and (workdir / report.group(1)).stat().st_size > 10_000


@pytest.mark.parametrize("command", [c for c in RUNNABLE if c.startswith("stepweave ask")])
async def test_readme_ask_command_runs(command: str, workdir: Path) -> None:
    plan = [
        {"id": "t1", "tool": "shell", "args": {"argv": ["df", "-Pk", "/"]}},
        {"id": "t2", "tool": "shell", "args": {"argv": ["uname", "-sr"]}},
    ]
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan(plan), ScriptedReply.finish("plenty of disk; a Linux kernel"))
        env = {**shell_env(), "OPENAI_BASE_URL": server.base_url, "STEPWEAVE_MODEL": server.model}
        process = await asyncio.create_subprocess_exec(
            "bash", "-c", command, cwd=workdir, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    if "--plan-only" in command:
        assert "+ t1: shell" in stdout.decode()
    else:
        assert "plenty of disk" in stdout.decode()
