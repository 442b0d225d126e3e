"""``Prompter``: the one service that asks the operator, at a terminal or not at all.

Everything that asks a person goes through it: the CLI's approval of gated steps, the
``approve`` tool, a runbook's operator questions (``tsg_judge``, ``tsg_manual``) and
``resume``'s question about a step that was in flight. A tool reaches it as
``ctx.prompter`` (``ToolContext``); a command builds one from its options and hands it to
the ``Orchestrator``. Two kinds of question:

- ``approve``: may a side effect happen? ``--yes`` approves everything, ``--allow TOOL``
  approves that tool's steps, otherwise a person at the terminal answers; with no
  terminal the step is refused, with a message naming it and the option that would allow it.
- ``ask``: a question about the world ("does this condition hold?", "done by hand?").
  Only a person answers it: ``--yes`` approves commands, it never decides a condition.
  With no terminal the answer is ``None`` (undecided).

One question at a time (parallel steps would garble the terminal): one lock per prompter,
made the first time it is needed, for the event loop that needs it. The answer is read
through the event loop (``add_reader`` on the terminal), so a waiting question is
cancelled like any other await (Ctrl-C, a cancelled run) instead of leaving a thread
blocked in ``input()`` that the process would wait for at exit. Every question is shown
literally: a ``str`` never as Rich markup, control characters as visible escapes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TextIO

from ._terminal_text import escape_control

# Rich is imported when a prompter is made, not with `tools`: most processes never ask.
if TYPE_CHECKING:
    import asyncio

    from rich.console import Console
    from rich.text import Text

__all__ = ["Decision", "Pausable", "Prompter", "default_prompter"]

_YES = frozenset({"y", "yes"})
_NO = frozenset({"", "n", "no"})


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to ``Prompter.approve``.

    Attributes:
        approved: whether the step may go ahead.
        by: who decided: ``yes`` (``--yes``), ``allow`` (``--allow TOOL``), ``terminal``
            (a person answered), ``nobody`` (no terminal to ask: refused).
        reason: for a refusal, why, naming the step, in words fit for the operator.
    """

    approved: bool
    by: Literal["yes", "allow", "terminal", "nobody"]
    reason: str = ""


class Pausable(Protocol):
    """A live display that must stop drawing while a question is on the terminal."""

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Prompter:
    """Asks the operator: approvals (``approve``) and questions (``ask``).

    Args:
        yes: approve every approval (``--yes``); never answers a question.
        allow_tools: tools whose steps are approved (``--allow TOOL``).
        console: where questions are written (default: standard error).
        stdin: where answers are read (default: ``sys.stdin`` at the time of asking); it
            must be a terminal for anyone to be asked.
        view: a live display paused while a question is shown.
        suggest_allow: the command has ``--allow``: a refusal says so.
    """

    def __init__(
        self,
        *,
        yes: bool = False,
        allow_tools: Iterable[str] = (),
        console: Console | None = None,
        stdin: TextIO | None = None,
        view: Pausable | None = None,
        suggest_allow: bool = False,
    ) -> None:
        if console is None:
            from rich.console import Console

            console = Console(stderr=True)
        self.yes = yes
        self.allow_tools = frozenset(allow_tools)
        self.console = console
        self.view = view
        self.suggest_allow = suggest_allow
        self._stdin = stdin
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        allowed = sorted(self.allow_tools)
        return f"Prompter(yes={self.yes}, allow_tools={allowed}, interactive={self.interactive})"

    @property
    def interactive(self) -> bool:
        """Whether a person can be asked: the input is a terminal."""
        return self._terminal() is not None

    async def approve(self, question: str | Text, *, step: str, tool: str | None = None) -> Decision:
        """May ``step`` (a call of ``tool``) go ahead? ``question`` is shown if a person is asked."""
        if self.yes:
            return Decision(True, "yes")
        if tool is not None and tool in self.allow_tools:
            return Decision(True, "allow")
        fd = self._terminal()
        if fd is None:
            return Decision(False, "nobody", self.unattended(step, tool))
        answer = await self._converse(question, fd)
        if answer:
            return Decision(True, "terminal")
        said = (
            "got no answer at the terminal (end of input)"
            if answer is None
            else "was refused at the terminal"
        )
        what = f"step {step!r} ({tool})" if tool else f"step {step!r}"
        return Decision(False, "terminal", f"{what} {said}")

    async def ask(self, question: str | Text, *, step: str) -> bool | None:
        """A person's yes/no answer to ``question`` (asked for ``step``); ``None`` when
        nobody can answer (no terminal, or end of input). ``--yes`` never answers it."""
        fd = self._terminal()
        if fd is None:
            return None
        return await self._converse(question, fd)

    def unattended(self, step: str, tool: str | None = None) -> str:
        """Why ``step`` is refused when there is no terminal to ask, and how to allow it."""
        if self.suggest_allow and tool:
            return (
                f"step {step!r} ({tool}) needs approval and there is no terminal to ask: "
                f"pass --allow {tool} to approve {tool} steps, or --yes to approve every step"
            )
        return f"step {step!r} needs approval and there is no terminal to ask: pass --yes to approve it"

    # -- the terminal -----------------------------------------------------------------

    def _terminal(self) -> int | None:
        """The descriptor to read answers from, or ``None`` when it is not a terminal."""
        stream = self._stdin if self._stdin is not None else sys.stdin
        try:
            if stream is None or stream.closed or not stream.isatty():
                return None
            return stream.fileno()
        except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor
            return None

    def _one_at_a_time(self) -> asyncio.Lock:
        # Made lazily, for the running loop: a lock made at import (or under another loop)
        # would belong to no loop or the wrong one.
        import asyncio  # here, as rich: `tools` is imported by commands that never ask

        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock = asyncio.Lock()
            self._lock_loop = loop
        return self._lock

    async def _converse(self, question: str | Text, fd: int) -> bool | None:
        """Show ``question`` with ``[y/N]`` until the answer is yes or no; ``None`` at end of input."""
        from rich.text import Text

        shown = question if isinstance(question, Text) else Text(escape_control(question))
        async with self._one_at_a_time():
            if self.view is not None:
                self.view.pause()
            try:
                prompt = Text.assemble(shown, " [y/N] ")
                while True:
                    self.console.print(prompt, end="", highlight=False, soft_wrap=True)
                    line = await _read_line(fd)
                    if not line:
                        self.console.print()
                        return None
                    answer = line.strip().lower()
                    if answer in _YES:
                        return True
                    if answer in _NO:
                        return False
                    prompt = Text("Please answer y or n. [y/N] ")
            finally:
                if self.view is not None:
                    self.view.resume()


async def _read_line(fd: int) -> str:
    """One line from a terminal descriptor, without blocking the event loop."""
    import asyncio

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


_default: Prompter | None = None


def default_prompter() -> Prompter:
    """The prompter of a call made outside a run that brought its own: asks at this
    process's terminal, approves nothing by itself. Made on first use (one per process)."""
    global _default
    if _default is None:
        _default = Prompter()
    return _default
