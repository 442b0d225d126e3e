"""The ``approve`` gate: ``--yes`` through the context's prompter, refusal without a terminal, and a real terminal (pty)."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tools import Prompter, ToolContext, ToolError
from tools.builtin import Approval, approve

# Runs the gate in a child whose stdin/stdout/stderr are a pseudo-terminal.
CHILD = """
import asyncio
from tools import ToolError
from tools.builtin import approve

try:
    result = asyncio.run(approve.invoke({"message": "Deploy build 42?"}))
    print("RESULT", result.by, flush=True)
except ToolError as exc:
    print("REFUSED", exc, "retryable" if exc.retryable else "final", flush=True)
"""


def run_on_terminal(answers: list[bytes], deadline_s: float = 20.0) -> str:
    """Run ``CHILD`` on a pty; type each answer after each prompt; return everything shown."""
    env = dict(os.environ)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and shown.count(b"[y/N]") > len(answers) - len(pending):
                    os.write(master, pending.pop(0))
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return shown.decode(errors="replace").replace("\r\n", "\n")


async def test_yes_in_the_context_approves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    ctx = ToolContext(task_id="gate", prompter=Prompter(yes=True))
    result = await approve.invoke({"message": "Ship it?"}, ctx)
    assert result == Approval(approved=True, by="yes", message="Ship it?")


async def test_allow_approve_approves_only_this_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    allowed = ToolContext(task_id="gate", prompter=Prompter(allow_tools={"approve"}))
    assert (await approve.invoke({"message": "Ship it?"}, allowed)).by == "allow"
    other = ToolContext(task_id="gate", prompter=Prompter(allow_tools={"shell"}))
    with pytest.raises(ToolError, match="no terminal to ask"):
        await approve.invoke({"message": "Ship it?"}, other)


async def test_the_environment_approves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The variable --yes used to travel in is not read any more: --yes is the prompter's.
    monkeypatch.setenv("STEPWEAVE_ASSUME_YES", "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    with pytest.raises(ToolError, match="no terminal to ask"):
        await approve.invoke({"message": "Ship it?"})


async def test_non_interactive_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    # Input is available but not from a terminal: nobody is there to ask, so no guessing.
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    with pytest.raises(
        ToolError, match="step 'deploy' needs approval and there is no terminal to ask: pass --yes"
    ) as info:
        await approve.invoke({"message": "Ship it?"}, ToolContext(task_id="deploy"))
    assert info.value.retryable is False
    assert "'Ship it?'" in str(info.value)


def test_policy() -> None:
    assert approve.needs_approval is False  # it is the gate itself
    assert approve.retries == 0


def test_terminal_yes() -> None:
    shown = run_on_terminal([b"y\n"])
    assert "Deploy build 42?\nApprove? [y/N] " in shown
    assert "RESULT terminal" in shown


def test_terminal_no_and_reprompt() -> None:
    shown = run_on_terminal([b"maybe\n", b"\n"])
    assert "Please answer y or n." in shown
    assert "REFUSED not approved: 'Deploy build 42?' final" in shown
