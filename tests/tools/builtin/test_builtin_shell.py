"""The ``shell`` tool against real processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from tools import ToolArgumentError, ToolContext, ToolError
from tools.builtin import ShellResult, shell

CTX = ToolContext(run_id="test", task_id="shell")

# Starts a grandchild that would outlive its parent, writes its PID, then waits for it.
TREE_SCRIPT = "sleep 30 & echo $! > pidfile; wait"


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie left for a non-reaping init counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_until_gone(pid: int, deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not process_gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, 9)  # do not leak it past the test
            pytest.fail(f"process {pid} still running {deadline_s}s after its group was killed")
        await asyncio.sleep(0.02)


def read_text_if_any(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def same_directory(a: str, b: Path) -> bool:
    return Path(a).resolve() == b.resolve()


async def read_pid(pidfile: Path, deadline_s: float = 5.0) -> int:
    deadline = time.monotonic() + deadline_s
    while True:
        text = read_text_if_any(pidfile)
        if text.endswith("\n"):
            return int(text)
        if time.monotonic() > deadline:
            pytest.fail(f"{pidfile} was not written")
        await asyncio.sleep(0.01)


async def test_captures_output_and_exit_code() -> None:
    result = await shell.invoke({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}, CTX)
    assert isinstance(result, ShellResult)
    assert result.exit_code == 3
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.truncated is False
    assert result.duration_s >= 0


async def test_check_raises_non_retryable_with_stderr_tail() -> None:
    with pytest.raises(ToolError, match=r"exited with code 2: something broke") as info:
        await shell.invoke({"argv": ["sh", "-c", "echo something broke >&2; exit 2"], "check": True}, CTX)
    assert info.value.retryable is False


async def test_check_passes_on_success() -> None:
    result = await shell.invoke({"argv": ["true"], "check": True}, CTX)
    assert result.exit_code == 0


async def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.5s") as info:
        await shell.invoke({"argv": ["sh", "-c", TREE_SCRIPT], "cwd": str(tmp_path), "timeout": 0.5}, CTX)
    assert info.value.retryable is True
    assert time.monotonic() - started < 5
    grandchild = await read_pid(tmp_path / "pidfile")
    await wait_until_gone(grandchild)


async def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    # The child ignores SIGTERM; after kill_grace it gets SIGKILL.
    script = "trap '' TERM; sleep 30 & echo $! > pidfile; wait"
    with pytest.raises(ToolError, match="timed out"):
        await shell.invoke(
            {"argv": ["sh", "-c", script], "cwd": str(tmp_path), "timeout": 0.3, "kill_grace": 0.3}, CTX
        )
    await wait_until_gone(await read_pid(tmp_path / "pidfile"))


async def test_cancellation_kills_the_process_tree(tmp_path: Path) -> None:
    call = asyncio.create_task(shell.invoke({"argv": ["sh", "-c", TREE_SCRIPT], "cwd": str(tmp_path)}, CTX))
    grandchild = await read_pid(tmp_path / "pidfile")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await wait_until_gone(grandchild)


async def test_cancellation_while_the_program_starts_stops_the_group_at_once(tmp_path: Path) -> None:
    # Cancelled right after the fork, while asyncio connects the pipes (about one try in
    # five hits that window): asyncio alone would kill the program and wait for the
    # background `sleep` holding its pipes, here 20 s.
    pidfile = tmp_path / "pidfile"
    for _ in range(10):
        call = asyncio.create_task(
            shell.invoke({"argv": ["sh", "-c", TREE_SCRIPT.replace("30", "20")], "cwd": str(tmp_path)}, CTX)
        )
        await asyncio.sleep(0)
        call.cancel()
        async with asyncio.timeout(10):
            with pytest.raises(asyncio.CancelledError):
                await call
        if (text := read_text_if_any(pidfile)).endswith("\n"):
            await wait_until_gone(int(text))
        pidfile.unlink(missing_ok=True)


async def test_background_process_holding_the_output_is_stopped(tmp_path: Path) -> None:
    script = "sleep 30 & echo $! > pidfile; echo started"
    result = await shell.invoke({"argv": ["sh", "-c", script], "cwd": str(tmp_path)}, CTX)
    assert result.exit_code == 0
    assert result.stdout == "started\n"
    await wait_until_gone(await read_pid(tmp_path / "pidfile"))


async def test_output_cap_truncates() -> None:
    result = await shell.invoke(
        {"argv": ["sh", "-c", "yes | head -c 100000; echo tail >&2"], "max_output_bytes": 1000}, CTX
    )
    assert result.exit_code == 0
    assert result.truncated is True
    assert len(result.stdout) == 1000
    assert result.stdout.startswith("y\ny\n")
    assert result.stderr == "tail\n"


async def test_stdin_text() -> None:
    result = await shell.invoke({"argv": ["cat"], "stdin": "hello\nworld"}, CTX)
    assert result.stdout == "hello\nworld"


async def test_stdin_is_empty_by_default() -> None:
    result = await shell.invoke({"argv": ["cat"], "timeout": 5}, CTX)
    assert result.stdout == ""


async def test_environment_allowlist_and_set_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SW_SECRET", "s3cret")
    monkeypatch.setenv("SW_SHARED", "shared")
    argv = ["sh", "-c", 'echo "${SW_SECRET-unset} ${SW_SHARED-unset} ${SW_SET-unset}"']
    default = await shell.invoke({"argv": argv}, CTX)
    assert default.stdout == "unset unset unset\n"
    chosen = await shell.invoke({"argv": argv, "env": ["PATH", "SW_SHARED"], "set_env": {"SW_SET": "x"}}, CTX)
    assert chosen.stdout == "unset shared x\n"


async def test_cwd(tmp_path: Path) -> None:
    result = await shell.invoke({"argv": ["pwd"], "cwd": str(tmp_path)}, CTX)
    assert same_directory(result.stdout.strip(), tmp_path)


async def test_missing_cwd_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ToolError, match=r"cwd .*nope.* is not an existing directory") as info:
        await shell.invoke({"argv": ["true"], "cwd": missing}, CTX)
    assert info.value.retryable is False


async def test_missing_program_is_named() -> None:
    with pytest.raises(ToolError, match="program 'no-such-program-xyz' not found") as info:
        await shell.invoke({"argv": ["no-such-program-xyz"]}, CTX)
    assert info.value.retryable is False


@pytest.mark.parametrize("argv", [[], "echo hi", ["echo", True], ["echo", None], None])
async def test_argv_must_be_a_non_empty_list_of_strings(argv: object) -> None:
    with pytest.raises(ToolArgumentError, match="argv"):
        await shell.invoke({"argv": argv}, CTX)


def test_schema_and_policy() -> None:
    schema = shell.parameters_schema
    assert schema["properties"]["argv"]["type"] == "array"
    assert schema["properties"]["argv"]["minItems"] == 1
    assert schema["required"] == ["argv"]
    assert shell.idempotent is False
    assert shell.is_async


async def test_undecodable_output_is_replaced() -> None:
    script = "import sys; sys.stdout.buffer.write(b'a\\xffb')"
    result = await shell.invoke({"argv": [sys.executable, "-c", script]})
    assert result.stdout == "a\ufffdb"


async def test_numbers_in_argv_are_written_out_but_booleans_are_refused() -> None:
    # An integer workflow input rendered into argv arrives as an int, not as text.
    result = await shell.invoke({"argv": ["echo", 3, 2.5, "x"]}, CTX)
    assert isinstance(result, ShellResult) and result.stdout == "3 2.5 x\n"
    with pytest.raises(ToolArgumentError, match="argv"):
        await shell.invoke({"argv": ["echo", True]}, CTX)
