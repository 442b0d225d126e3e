"""The approval prompt at a real terminal shows what will run, literally (review finding 8).

The command runs on a pseudo-terminal, as an operator would run it: stdin is a TTY, Rich
renders with colours, and the test answers the prompt by typing.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

from rich.console import Console

from orchestrator import Task
from orchestrator.cli.approval import ApprovalPolicy, approval_question, describe_arguments
from planners.llm.testing import OpenAITestServer, ScriptedReply

from .test_cli import ROOT, stepweave_command

ESC = b"\x1b"
#: What Rich itself writes around the bold step id: the only escapes a prompt may hold.
RICH_STYLES = (b"\x1b[1m", b"\x1b[0m")


def run_on_terminal(args: list[str], answer: str, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Run ``stepweave ARGS`` on a pseudo-terminal; type ``answer`` at each approval prompt.

    Returns the exit code and every byte the terminal received.
    """
    leader, follower = pty.openpty()
    # A wide terminal: the prompt stays on one line, so a test can read it whole.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    process = subprocess.Popen(
        [*stepweave_command(), *args],
        cwd=ROOT, env={**base, "TERM": "xterm-256color", "COLUMNS": "400", **(env or {})},
        stdin=follower, stdout=follower, stderr=follower, start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    received = b""
    answered = 0
    deadline = time.monotonic() + 50
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower side closed: the process ended
                break
            if not data:
                break
            received += data
            while received.count(b"Run it?") > answered:
                os.write(leader, answer.encode() + b"\n")
                answered += 1
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, received


def prompt_line(output: bytes) -> bytes:
    start = output.index(b"Step ")
    return output[start : output.index(b"Run it?", start)]


def spoof_flow(tmp_path: Path, command: str) -> Path:
    flow = tmp_path / "spoof.yaml"
    flow.write_text(
        "name: spoof\n"
        "steps:\n"
        "  - id: restart\n"
        "    tool: shell\n"
        "    needs_approval: true\n"
        "    args:\n"
        f"      argv: [sh, -c, {command}]\n"
    )
    return flow


def test_markup_in_an_argument_cannot_hide_part_of_the_command(tmp_path: Path) -> None:
    victim = tmp_path / "victimdir"
    victim.mkdir()
    # The review's repro/spoof.yaml: [conceal] hid the rm -rf from the operator.
    flow = spoof_flow(tmp_path, f'"echo restarting web service [conceal]; rm -rf {victim}; : [/conceal]"')
    code, output = run_on_terminal(["run", str(flow), "--no-journal"], answer="n")
    line = prompt_line(output)
    assert f"[conceal]; rm -rf {victim}; : [/conceal]".encode() in line  # shown, literally
    assert b"\x1b[8m" not in output  # SGR 8 (conceal) never reaches the terminal
    for style in RICH_STYLES:
        line = line.replace(style, b"")
    assert ESC not in line
    assert code == 1 and victim.exists()  # refused at the prompt: nothing deleted


def test_terminal_controls_in_an_argument_are_shown_not_obeyed(tmp_path: Path) -> None:
    victim = tmp_path / "victimdir"
    victim.mkdir()
    # YAML escapes: ESC (SGR 8 conceal, OSC title + BEL), C1 CSI (0x9b), a bidi override.
    flow = spoof_flow(
        tmp_path,
        f'"echo ok \\e[8m; rm -rf {victim} \\e[0m \\e]0;title\\a \\u009b8m \\u202eevil"',
    )
    code, output = run_on_terminal(["run", str(flow), "--no-journal"], answer="n")
    line = prompt_line(output)
    assert f"rm -rf {victim}".encode() in line
    for style in RICH_STYLES:
        line = line.replace(style, b"")
    assert ESC not in line and b"\x07" not in line
    assert "\x9b".encode() not in output and "\u202e".encode() not in output
    assert b"\\u001b[8m" in line and b"\\x9b8m" in line and b"\\u202eevil" in line  # visible
    assert code == 1 and victim.exists()


async def test_ask_at_a_terminal_asks_before_a_side_effect(tmp_path: Path) -> None:
    plan = [
        {"id": "t1", "tool": "wait", "args": {"seconds": 0}},
        {"id": "t2", "tool": "shell", "args": {"argv": ["touch", str(tmp_path / "made")]}},
    ]
    for answer, made in (("n", False), ("y", True)):
        async with OpenAITestServer(responder=lambda record: ScriptedReply.finish("ok")) as server:
            server.queue(ScriptedReply.plan(plan))
            env = {"OPENAI_BASE_URL": server.base_url, "STEPWEAVE_MODEL": server.model}
            args = ["ask", "Make a file", "--tools", "tools.builtin"]
            code, output = await asyncio.to_thread(run_on_terminal, args, answer, env)
        # Only the shell step was asked about; wait only reads.
        assert output.count(b"Run it?") == 1, output.decode(errors="replace")
        assert b"Step \x1b[1mt2\x1b[0m (shell" in output or b"Step t2 (shell" in output
        assert (tmp_path / "made").exists() is made
        assert code == (0 if made else 1)


def test_the_question_is_never_read_as_markup() -> None:
    task = Task(id="deploy", tool="shell", args={})
    args = {"argv": ["sh", "-c", "echo hi [conceal]; rm -rf /srv; [/conceal]\x1b[8m\x9b"]}
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=400)
    console.print(approval_question(task, args))
    shown = buffer.getvalue()
    assert "[conceal]; rm -rf /srv; [/conceal]" in shown
    assert "\x1b[8m" not in shown and "\x9b" not in shown
    assert shown.replace("\x1b[1m", "").replace("\x1b[0m", "").count("\x1b") == 0


def test_long_arguments_are_cut_visibly() -> None:
    shown = describe_arguments({"content": "x" * 10_000 + "rm -rf /"}, limit=100)
    assert shown.endswith("more characters not shown; refuse unless you know them)")
    assert len(shown) < 200


def test_ask_policy_on_environment_variables() -> None:
    policy = ApprovalPolicy(yes=True, allow_env=frozenset({"GITHUB_TOKEN"}))
    shell = Task(id="t1", tool="shell", args={})
    assert policy.refusal(shell, {"argv": ["ls"]}) is None  # the harmless defaults
    assert policy.refusal(shell, {"argv": ["ls"], "env": ["PATH", "HOME", "GITHUB_TOKEN"]}) is None
    refused = policy.refusal(shell, {"argv": ["env"], "env": ["PATH", "AWS_SECRET_ACCESS_KEY"]})
    assert (
        refused is not None and "--allow-env AWS_SECRET_ACCESS_KEY" in refused and "'t1' (shell)" in refused
    )
    assert policy.refusal(shell, {"argv": ["env"], "env": "OPENAI_API_KEY"}) is not None  # not even a list
    # run and tsg run: the author wrote the env list; no restriction there.
    assert ApprovalPolicy(yes=True).refusal(shell, {"env": ["OPENAI_API_KEY"]}) is None
