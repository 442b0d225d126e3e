"""``shell``: run a program from an argument list, with a timeout that kills its whole process group."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError
from ._common import tail

# asyncio (~10 ms to import) is imported in the functions that run the program: checking a
# workflow (`stepweave validate`) imports this module for the tool's schema and runs nothing.
if TYPE_CHECKING:
    import asyncio

__all__ = ["DEFAULT_ENV_PASSTHROUGH", "DEFAULT_MAX_OUTPUT_BYTES", "ShellResult", "shell"]

#: Parent environment variables passed to the child when ``env`` is not given.
DEFAULT_ENV_PASSTHROUGH: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TERM",
)
#: Default cap on the bytes kept from each of stdout and stderr.
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024

#: errno values of a start that can work later: out of file descriptors (per process or
#: system-wide) or of processes (fork's EAGAIN).
_BACK_PRESSURE = frozenset({errno.EMFILE, errno.ENFILE, errno.EAGAIN})

_CHUNK = 64 * 1024
#: How long to keep reading after the program exited, for output still in flight from
#: background processes it started; those still holding the pipes afterwards are stopped.
_DRAIN_S = 1.0


class ShellResult(BaseModel):
    """What a finished program did."""

    exit_code: int = Field(description="Exit status; negative when killed by a signal (-15 = SIGTERM).")
    stdout: str = Field(description="Standard output, decoded as UTF-8 (undecodable bytes replaced).")
    stderr: str = Field(description="Standard error, decoded as UTF-8 (undecodable bytes replaced).")
    truncated: bool = Field(description="Whether stdout or stderr exceeded max_output_bytes and was cut.")
    duration_s: float = Field(description="Wall-clock run time in seconds.")


class _Capture:
    """Keeps the first ``limit`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _pump(stream: asyncio.StreamReader | None, sink: _Capture) -> None:
    # Keep reading past the cap: a child blocked on a full pipe would never finish.
    if stream is None:
        return
    while chunk := await stream.read(_CHUNK):
        sink.add(chunk)


async def _feed(stream: asyncio.StreamWriter | None, data: bytes) -> None:
    if stream is None:
        return
    # The program may exit or close stdin without reading it all; that is its business.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stream.write(data)
        await stream.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
        stream.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _leader_exited(
    proc: asyncio.subprocess.Process, waiter: asyncio.Future[int], limit: float | None = None
) -> bool:
    """Wait until the program itself has exited (at most ``limit`` seconds); return whether it has.

    Once started, ``proc.wait()`` (``waiter``) only finishes when the output pipes are
    closed too, which a background process may delay forever; ``proc.returncode`` is set as
    soon as the program is reaped, so poll it as well (backing off to ten checks a second).
    """
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    interval = 0.005
    while not waiter.done() and proc.returncode is None:
        step = interval if deadline is None else min(interval, deadline - loop.time())
        if step <= 0:
            return False
        # asyncio.wait, not asyncio.timeout: this also runs while a cancellation is handled.
        await asyncio.wait([waiter], timeout=step)
        interval = min(interval * 2, 0.1)
    return True


async def _stop_group(
    proc: asyncio.subprocess.Process,
    waiter: asyncio.Future[int],
    readers: list[asyncio.Task[None]],
    grace: float,
) -> None:
    """SIGTERM the process group; SIGKILL it after ``grace`` seconds; reap the program.

    The group counts as gone once the program has exited and the output pipes have closed
    (every process holding them has exited); then one SIGKILL to the group catches members
    that ignored SIGTERM and do not hold the pipes.
    """
    import asyncio

    pgid = proc.pid  # start_new_session=True: the program leads its own process group
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    _signal_group(pgid, signal.SIGTERM)
    await _leader_exited(proc, waiter, grace)
    pending = [r for r in readers if not r.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0.0))
    _signal_group(pgid, signal.SIGKILL)
    await _leader_exited(proc, waiter)


async def _finish(
    proc: asyncio.subprocess.Process, waiter: asyncio.Future[int], readers: list[asyncio.Task[None]]
) -> None:
    """Read what is left in the pipes and release them once the program has exited."""
    import asyncio

    pending = [r for r in readers if not r.done()]
    if pending:
        _, pending_set = await asyncio.wait(pending, timeout=_DRAIN_S)
        if pending_set:
            # Only a process outside the group (it left with setsid) can still hold the
            # pipes: stop reading and close our ends, or wait() would never return.
            transport = getattr(proc, "_transport", None)
            if transport is not None:
                transport.close()
            await asyncio.wait(readers)
    await waiter


def _child_env(env: list[str] | None, set_env: dict[str, str] | None) -> dict[str, str]:
    names = DEFAULT_ENV_PASSTHROUGH if env is None else env
    result: dict[str, str] = {}
    for name in names:
        if not name or "=" in name or "\0" in name:
            raise ToolError(f"env: invalid environment variable name {name!r}", retryable=False)
        if name in os.environ:
            result[name] = os.environ[name]
    for name, value in (set_env or {}).items():
        if not name or "=" in name or "\0" in name:
            raise ToolError(f"set_env: invalid environment variable name {name!r}", retryable=False)
        if "\0" in value:
            raise ToolError(f"set_env: value of {name!r} contains a NUL byte", retryable=False)
        result[name] = value
    return result


def _number_as_text(value: object) -> object:
    # `argv: [head, -n, "${{ inputs.lines }}"]` renders an integer input natively; a
    # program's arguments are text, so numbers are written out (booleans are not guessed).
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


#: One argument of a program: text (numbers are accepted and written out).
_Arg = Annotated[str, BeforeValidator(_number_as_text)]


@tool(name="shell", idempotent=False)
async def shell(
    ctx: ToolContext,
    argv: Annotated[list[_Arg], Field(min_length=1)],
    cwd: str | None = None,
    env: list[str] | None = None,
    set_env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: Annotated[float, Field(gt=0)] | None = None,  # noqa: ASYNC109 (the program's limit)
    max_output_bytes: Annotated[int, Field(ge=0)] = DEFAULT_MAX_OUTPUT_BYTES,
    check: bool = False,
    kill_grace: Annotated[float, Field(ge=0)] = 2.0,
) -> ShellResult:
    """Run a program given as an argument list (no shell parsing) and capture its output.

    The program runs in its own process group. On timeout or cancellation the whole group
    gets SIGTERM, then SIGKILL after ``kill_grace`` seconds, so programs it started stop too.
    Background processes that still hold its stdout/stderr after it exits are stopped the
    same way.

    Args:
        argv: Program and arguments, e.g. ["git", "status", "--short"]. Never a shell string;
            run ["sh", "-c", "..."] explicitly when shell syntax is really needed.
        cwd: Working directory (default: the current one).
        env: Names of environment variables to pass through from the parent (default: PATH,
            HOME, USER, LOGNAME, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, TERM). Others are not passed.
        set_env: Extra environment variables to set for the program, name to value.
        stdin: Text written to the program's standard input (default: empty input).
        timeout: Seconds before the process group is killed and the call fails.
        max_output_bytes: Bytes kept from each of stdout and stderr; the rest is dropped and
            `truncated` is set.
        check: Fail (without retry) when the exit code is not 0.
        kill_grace: Seconds between SIGTERM and SIGKILL when stopping the process group.
    """
    import asyncio

    if not argv:  # direct calls skip the schema
        raise ToolError(f"argv must be a non-empty list of strings, got {argv!r}", retryable=False)
    for i, arg in enumerate(argv):
        if "\0" in arg:
            raise ToolError(f"argv[{i}] contains a NUL byte: {arg!r}", retryable=False)
    if not argv[0]:
        raise ToolError("argv[0] (the program) is empty", retryable=False)
    child_env = _child_env(env, set_env)

    started = time.monotonic()
    ctx.logger.debug("shell: running %r", argv)
    cancelled_while_starting = False
    try:
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=cwd,
                env=child_env,
                start_new_session=True,
            )
        )
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The program runs while its pipes are being connected. Cancelled there, asyncio
            # would kill the program alone and wait for every process holding its pipes (a
            # `sleep 30 &` held the call for 30 s): let the start finish, stop the group below.
            cancelled_while_starting = True
            proc = await starting
    except (FileNotFoundError, NotADirectoryError) as exc:
        if cwd is not None and exc.filename == cwd:
            raise ToolError(f"cwd {cwd!r} is not an existing directory", retryable=False) from None
        path = child_env.get("PATH", os.defpath)
        raise ToolError(f"program {argv[0]!r} not found (PATH={path!r})", retryable=False) from None
    except PermissionError:
        raise ToolError(f"program {argv[0]!r}: permission denied", retryable=False) from None
    except OSError as exc:
        if exc.errno in _BACK_PRESSURE:
            # Out of descriptors or processes for now: other tasks finishing frees them.
            raise ToolError(
                f"cannot start {argv[0]!r} for now: {exc.strerror} (errno {errno.errorcode[exc.errno]}); "
                "too many programs or files open at once: lower max_concurrency or raise the limit "
                "(ulimit -n, ulimit -u)"
            ) from None
        raise ToolError(f"cannot start {argv[0]!r}: {exc}", retryable=False) from None

    out, err = _Capture(max_output_bytes), _Capture(max_output_bytes)
    readers = [asyncio.create_task(_pump(proc.stdout, out)), asyncio.create_task(_pump(proc.stderr, err))]
    waiter = asyncio.ensure_future(proc.wait())
    helpers: list[asyncio.Future[Any]] = [*readers, waiter]
    if stdin is not None:
        helpers.append(asyncio.create_task(_feed(proc.stdin, stdin.encode("utf-8"))))
    timed_out = False
    try:
        if cancelled_while_starting:
            raise asyncio.CancelledError
        try:
            async with asyncio.timeout(timeout):
                await _leader_exited(proc, waiter)
        except TimeoutError:
            timed_out = True
            await _stop_group(proc, waiter, readers, kill_grace)
        else:
            _, pending = await asyncio.wait(readers, timeout=_DRAIN_S)
            if pending:
                ctx.logger.debug("shell: background processes of %r still hold its output; stopping", argv)
                await _stop_group(proc, waiter, readers, kill_grace)
        await _finish(proc, waiter, readers)
    except BaseException:
        # Cancelled (the task's deadline, the run stopping) or failing: leave nothing behind.
        if proc.returncode is None or not all(r.done() for r in readers):
            await _stop_group(proc, waiter, readers, kill_grace)
            await _finish(proc, waiter, readers)
        raise
    finally:
        if proc.returncode is None:  # cancelled again while stopping: no more waiting
            _signal_group(proc.pid, signal.SIGKILL)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)

    duration = time.monotonic() - started
    exit_code = proc.returncode
    assert exit_code is not None
    stderr_text = err.text()
    if timed_out:
        detail = f"; stderr: {tail(stderr_text, 500)}" if stderr_text.strip() else ""
        raise ToolError(
            f"command {argv[0]!r} timed out after {timeout:g}s; its process group was killed{detail}"
        )
    if check and exit_code != 0:
        detail = f": {tail(stderr_text)}" if stderr_text.strip() else " (no stderr)"
        raise ToolError(f"command {argv[0]!r} exited with code {exit_code}{detail}", retryable=False)
    return ShellResult(
        exit_code=exit_code,
        stdout=out.text(),
        stderr=stderr_text,
        truncated=out.truncated or err.truncated,
        duration_s=duration,
    )
