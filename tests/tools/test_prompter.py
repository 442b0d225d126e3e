"""The ``Prompter`` on a real pseudo-terminal: answers, refusal without one, ``--yes``,
``--allow`` scoping, one question at a time, and a waiting question that can be cancelled."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

import pytest
from rich.console import Console

from tools import Decision, Prompter

pytest.importorskip("pty")  # POSIX only, as the terminals it stands for

#: What a shown question ends with: counting these counts the questions on the terminal.
MARK = b"[y/N] "


@dataclass
class Terminal:
    """Both ends of a pseudo-terminal: the prompter's (``stdin``, ``console``) and the person's."""

    person: int
    stdin: TextIO
    console: Console
    shown: bytes = b""

    def type(self, text: str) -> None:
        os.write(self.person, text.encode())

    async def until(self, needle: bytes, count: int = 1) -> bytes:
        """Read what the terminal shows until ``needle`` appeared ``count`` times in all."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            while self.shown.count(needle) < count:
                readable: asyncio.Future[None] = loop.create_future()
                loop.add_reader(self.person, readable.set_result, None)
                try:
                    await readable
                finally:
                    loop.remove_reader(self.person)
                self.shown += os.read(self.person, 4096)
        return self.shown


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    person, own = os.openpty()
    stdin = os.fdopen(own, "r")
    out = os.fdopen(os.dup(own), "w")
    console = Console(file=out, width=200, force_terminal=False, color_system=None)
    try:
        yield Terminal(person, stdin, console)
    finally:
        stdin.close()
        out.close()
        os.close(person)


def prompter(terminal: Terminal, **options: object) -> Prompter:
    return Prompter(console=terminal.console, stdin=terminal.stdin, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "expected"), [("y\n", True), ("YES\n", True), ("n\n", False), ("\n", False), ("\x04", None)]
)
async def test_a_person_answers(terminal: Terminal, typed: str, expected: bool | None) -> None:
    asking = asyncio.create_task(prompter(terminal).ask("Does the disk look full?", step="check"))
    await terminal.until(b"Does the disk look full? [y/N] ")
    terminal.type(typed)  # \x04 is Ctrl-D: end of input, nobody answered
    assert await asking is expected


async def test_an_unclear_answer_is_asked_again(terminal: Terminal) -> None:
    asking = asyncio.create_task(prompter(terminal).approve("Restart web?", step="restart", tool="shell"))
    await terminal.until(MARK)
    terminal.type("maybe\n")
    await terminal.until(b"Please answer y or n.")
    terminal.type("y\n")
    assert await asking == Decision(True, "terminal")


async def test_a_refusal_at_the_terminal_names_the_step(terminal: Terminal) -> None:
    asking = asyncio.create_task(prompter(terminal).approve("Restart web?", step="restart", tool="shell"))
    await terminal.until(MARK)
    terminal.type("n\n")
    decision = await asking
    assert not decision.approved and decision.by == "terminal"
    assert decision.reason == "step 'restart' (shell) was refused at the terminal"


async def test_questions_are_shown_literally(terminal: Terminal) -> None:
    asking = asyncio.create_task(
        prompter(terminal).ask("ok [bold]x[/bold] \x1b[8mhidden\x1b]0;t\x07", step="s")
    )
    shown = await terminal.until(MARK)
    terminal.type("n\n")
    await asking
    assert b"[bold]x[/bold]" in shown and b"\\x1b[8mhidden\\x1b]0;t\\x07" in shown
    assert b"\x1b" not in shown and b"\x07" not in shown


async def test_without_a_terminal_nobody_is_asked() -> None:
    prompter = Prompter(stdin=io.StringIO("y\n"), console=Console(file=io.StringIO()))
    assert not prompter.interactive
    assert await prompter.ask("Does it hold?", step="judge") is None
    decision = await prompter.approve("Restart?", step="restart", tool="shell")
    assert decision == Decision(
        False,
        "nobody",
        "step 'restart' needs approval and there is no terminal to ask: pass --yes to approve it",
    )
    hinted = Prompter(stdin=io.StringIO(), suggest_allow=True)
    assert (await hinted.approve("Restart?", step="restart", tool="shell")).reason == (
        "step 'restart' (shell) needs approval and there is no terminal to ask: "
        "pass --allow shell to approve shell steps, or --yes to approve every step"
    )


async def test_yes_approves_but_never_answers_a_question(terminal: Terminal) -> None:
    everything = prompter(terminal, yes=True)
    assert await everything.approve("Restart?", step="restart", tool="shell") == Decision(True, "yes")
    assert terminal.shown == b""  # approved without showing anything
    unattended = Prompter(yes=True, stdin=io.StringIO("y\n"))
    assert await unattended.ask("Does the disk look full?", step="check") is None  # undecided


async def test_allow_approves_only_the_tools_it_names() -> None:
    allowed = Prompter(allow_tools={"shell"}, stdin=io.StringIO(), console=Console(file=io.StringIO()))
    assert await allowed.approve("x", step="a", tool="shell") == Decision(True, "allow")
    assert not (await allowed.approve("x", step="b", tool="http")).approved
    assert not (await allowed.approve("x", step="c")).approved  # a question about no tool
    assert await allowed.ask("x", step="d") is None  # --allow answers no question either


async def test_one_question_at_a_time(terminal: Terminal) -> None:
    shared = prompter(terminal)
    first = asyncio.create_task(shared.ask("first?", step="a"))
    second = asyncio.create_task(shared.approve("second?", step="b", tool="shell"))
    await terminal.until(MARK)
    # The other question waits for the lock: give it every chance to (wrongly) show itself.
    for _ in range(20):
        await asyncio.sleep(0)
    assert terminal.shown.count(MARK) == 1
    assert b"first?" in terminal.shown and b"second?" not in terminal.shown
    terminal.type("y\n")
    await terminal.until(MARK, count=2)
    assert b"second?" in terminal.shown
    terminal.type("n\n")
    assert await first is True
    assert await second == Decision(False, "terminal", "step 'b' (shell) was refused at the terminal")


async def test_a_waiting_question_is_cancelled_like_any_await(terminal: Terminal) -> None:
    shared = prompter(terminal)
    asking = asyncio.create_task(shared.ask("still there?", step="a"))
    await terminal.until(MARK)
    asking.cancel()  # what Ctrl-C or a cancelled run does
    with pytest.raises(asyncio.CancelledError):
        await asking
    # The terminal is free again: the next question is shown and answered.
    again = asyncio.create_task(shared.ask("now?", step="b"))
    await terminal.until(MARK, count=2)
    terminal.type("y\n")
    assert await again is True


def test_one_prompter_serves_successive_event_loops(terminal: Terminal) -> None:
    # Made outside any loop (as the CLI makes it), then two questions compete for the
    # terminal under one loop and again under another: the lock is made for the loop that
    # needs it (a lock made once, at import, would belong to the first loop only).
    shared = prompter(terminal)

    async def two_questions() -> list[bool | None]:
        return list(await asyncio.gather(shared.ask("one?", step="a"), shared.ask("two?", step="b")))

    for _ in range(2):
        terminal.type("y\nn\n")  # typed ahead: a terminal hands over one line per read
        assert asyncio.run(two_questions()) == [True, False]
