"""The ``approve`` gate: environment approval, non-interactive refusal, and a real terminal (pty)."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tools import ToolError
from tools.builtin import ASSUME_YES_ENV, Approval, approve

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
    env = {k: v for k, v in os.environ.items() if k != ASSUME_YES_ENV}
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


async def test_env_var_approves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ASSUME_YES_ENV, "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    result = await approve.invoke({"message": "Ship it?"})
    assert result == Approval(approved=True, by="env", message="Ship it?")


@pytest.mark.parametrize("value", [None, "0", "", "no"])
async def test_non_interactive_fails_clearly(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(ASSUME_YES_ENV, raising=False)
    else:
        monkeypatch.setenv(ASSUME_YES_ENV, value)
    # Input is available but not from a terminal: nobody is there to ask, so no guessing.
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    with pytest.raises(
        ToolError, match="not an interactive terminal; run interactively or pass --yes"
    ) as info:
        await approve.invoke({"message": "Ship it?"})
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
