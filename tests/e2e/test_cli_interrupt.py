"""Ctrl-C ends every run command the same way: ``error: interrupted``, exit code 130, and
how to continue the run when it is journaled.

Each command runs in a real subprocess whose step announces itself on a FIFO and then
blocks; the test waits for that line (no sleeping on a guess), then sends SIGINT to the
command's process group, as a terminal does on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from planners.llm.testing import OpenAITestServer, ScriptedReply

from .test_cli import stepweave_command

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals and FIFOs")


def blocking(tmp_path: Path) -> str:
    """The step: say it started (on the FIFO), then block until it is stopped. (``tail -f``
    would block without a timer, but a guide's ``tail -f`` is a step for a person.)"""
    return f"echo started > {tmp_path / FIFO}; exec sleep 3600"


INTERRUPTED = "error: interrupted"
FIFO = "started.fifo"


def interrupt(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``stepweave ARGS`` until its step has started, press Ctrl-C; return exit code and stderr."""
    fifo = cwd / FIFO
    if not fifo.exists():
        os.mkfifo(fifo)
    # Opened for reading and writing: never blocks, and never reads as closed between writers.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    process = subprocess.Popen(
        [*stepweave_command(), *args],
        cwd=cwd,
        env={**base, "STEPWEAVE_JOURNAL": str(cwd / "journal.sqlite3"), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stderr is not None
    errors = process.stderr.fileno()
    said = b""
    try:
        while True:  # until the step starts; the command's stderr is read meanwhile
            ready, _, _ = select.select([fd, errors], [], [], 45)
            assert ready, "the step did not start within 45 s: " + said.decode(errors="replace")
            if fd in ready:
                break
            chunk = os.read(errors, 65536)
            assert chunk, "the command ended before its step started: " + said.decode(errors="replace")
            said += chunk
        assert os.read(fd, 64) == b"started\n"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at a terminal sends
        _, rest = process.communicate(timeout=45)
    finally:
        os.close(fd)
        if process.poll() is None:
            process.kill()
        process.communicate()
    stderr = (said + (rest or b"")).decode(errors="replace")
    return process.returncode, stderr


def flow(tmp_path: Path) -> Path:
    path = tmp_path / "hang.yaml"
    path.write_text(
        "name: hang\nsteps:\n  - id: hang\n    tool: shell\n    args:\n"
        f"      argv: [sh, -c, {json.dumps(blocking(tmp_path))}]\n"
    )
    return path


def continued_run(stderr: str) -> str:
    """The run id of ``continue it with: stepweave resume RUN_ID`` (the line must be there)."""
    match = re.search(r"continue it with: stepweave resume (\S+)", stderr)
    assert match, stderr
    return match.group(1)


def test_run_and_resume_end_alike_on_ctrl_c(tmp_path: Path) -> None:
    code, stderr = interrupt(["run", str(flow(tmp_path))], tmp_path)
    assert code == 130 and INTERRUPTED in stderr, stderr
    run_id = continued_run(stderr)
    # The resumed run starts the step again; interrupted again, it says the same.
    code, stderr = interrupt(["resume", run_id, "--retry-inflight", "retry"], tmp_path)
    assert code == 130 and INTERRUPTED in stderr, stderr
    assert continued_run(stderr) == run_id


def test_tsg_run_ends_alike_on_ctrl_c(tmp_path: Path) -> None:
    guide = tmp_path / "hang.md"
    guide.write_text(f"# Hang\n\n1. Wait:\n\n   ```shell\n   {blocking(tmp_path)}\n   ```\n")
    code, stderr = interrupt(["tsg", "run", str(guide), "--yes"], tmp_path)
    assert code == 130 and INTERRUPTED in stderr, stderr
    assert "--tools planners.tsg.workflow_tools" in stderr
    continued_run(stderr)


async def test_ask_ends_alike_on_ctrl_c(tmp_path: Path) -> None:
    plan = [{"id": "t1", "tool": "shell", "args": {"argv": ["sh", "-c", blocking(tmp_path)]}}]
    async with OpenAITestServer(responder=lambda record: ScriptedReply.finish("never")) as server:
        server.queue(ScriptedReply.plan(plan))
        env = {
            "OPENAI_BASE_URL": server.base_url,
            "STEPWEAVE_MODEL": server.model,
            "HOME": str(tmp_path),
            "XDG_CACHE_HOME": str(tmp_path),
        }
        args = ["ask", "Wait", "--yes"]
        code, stderr = await asyncio.to_thread(interrupt, args, tmp_path, env)
    assert code == 130 and INTERRUPTED in stderr, stderr
    assert "continue it with" not in stderr  # ask does not journal: nothing to continue
