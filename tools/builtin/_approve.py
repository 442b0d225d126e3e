"""``approve``: a human gate. Asks y/N on the terminal; refuses to guess when there is none."""

from __future__ import annotations

import asyncio
import os
import sys
import weakref
from typing import Literal

from pydantic import BaseModel, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError
from ._common import truthy_env

__all__ = ["ASSUME_YES_ENV", "Approval", "approve"]

#: Set to 1 (the CLI's ``--yes`` does) to approve every gate without asking.
ASSUME_YES_ENV = "STEPWEAVE_ASSUME_YES"

_YES = frozenset({"y", "yes"})
_NO = frozenset({"", "n", "no"})

# One question on the terminal at a time, per event loop.
_prompt_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


class Approval(BaseModel):
    """A granted approval (a refusal fails the call instead)."""

    approved: bool = Field(description="Always true: a refusal raises an error.")
    by: Literal["env", "terminal"] = Field(
        description=f"'env' when {ASSUME_YES_ENV} approved it, 'terminal' when a person answered."
    )
    message: str = Field(description="The question that was approved.")


async def _read_line(fd: int) -> str:
    """One line from a terminal file descriptor, without blocking the event loop."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    try:
        loop.add_reader(fd, ready)
    except NotImplementedError:  # event loops without add_reader (Windows' proactor)
        return await asyncio.to_thread(sys.stdin.readline)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    # A terminal in canonical mode hands over whole lines; b"" means end of input (Ctrl-D).
    return os.read(fd, 4096).decode(errors="replace")


def _interactive_fd() -> int | None:
    stream = sys.stdin
    try:
        if stream is None or stream.closed or not stream.isatty():
            return None
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a real descriptor
        return None


@tool(name="approve", retries=0, read_only=True)
async def approve(ctx: ToolContext, message: str) -> Approval:
    """Ask a person to approve before the workflow continues; a refusal fails this step.

    On an interactive terminal it asks y/N. Without one it fails, unless the environment
    variable STEPWEAVE_ASSUME_YES=1 (the CLI's --yes) approves every gate.

    Args:
        message: The question shown to the person, e.g. "Deploy build 42 to production?".
    """
    if truthy_env(os.environ.get(ASSUME_YES_ENV)):
        ctx.logger.info("approve: %r auto-approved by %s", message, ASSUME_YES_ENV)
        return Approval(approved=True, by="env", message=message)
    fd = _interactive_fd()
    if fd is None:
        raise ToolError(
            f"approval needed for {message!r} but stdin is not an interactive terminal; "
            f"run interactively or pass --yes (or set {ASSUME_YES_ENV}=1) to approve",
            retryable=False,
        )
    loop = asyncio.get_running_loop()
    lock = _prompt_locks.setdefault(loop, asyncio.Lock())
    async with lock:
        question = f"\n[{ctx.task_id}] {message}\nApprove? [y/N] "
        while True:
            sys.stderr.write(question)
            sys.stderr.flush()
            line = await _read_line(fd)
            if not line:
                raise ToolError(f"approval for {message!r}: no answer (end of input)", retryable=False)
            answer = line.strip().lower()
            if answer in _YES:
                ctx.logger.info("approve: %r approved on the terminal", message)
                return Approval(approved=True, by="terminal", message=message)
            if answer in _NO:
                raise ToolError(f"not approved: {message!r}", retryable=False)
            question = "Please answer y or n. Approve? [y/N] "
