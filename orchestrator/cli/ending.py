"""How every run command ends: ``run``, ``resume``, ``tsg run`` and ``ask``.

Written once so the commands cannot drift apart again (``resume`` had stopped saying how
to continue an interrupted run; ``tsg run`` wrapped its resume command across two lines):

- Ctrl-C: ``error: interrupted``, exit code 130, and — when the run is journaled — the
  command that continues it, on one line (it is copied and pasted).
- A broker, device or journal that fails: a one-line reason naming the source, exit 1.
- ``--report``: the HTML report, and where it went (not in ``--json`` mode).
- The end: the command's last JSON record with ``--json``, else the summary table; then
  exit 1 with the reason when the run did not succeed (and the continue hint when it was
  cancelled, that is: stopped unfinished rather than failed).

The worker is not a command that ends a run at a terminal: it logs each run's end instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..terminal_text import escape_control
from .common import err, fail, out

if TYPE_CHECKING:
    from ..events import Event
    from ..graph import TaskGraph
    from ..journal import Journal
    from ..result import RunResult

__all__ = ["INTERRUPTED_EXIT", "RunEnding"]

#: The exit code of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_EXIT = 130

T = TypeVar("T")


@dataclass
class RunEnding:
    """The shared end of one run command.

    Attributes:
        source: what messages name (the workflow or guide file, or ``run ID``).
        json_lines: ``--json``: the end is a JSON record on stdout, not a table.
        resume_tools: the ``--tools`` modules a ``stepweave resume`` must name again.
    """

    source: str
    json_lines: bool = False
    resume_tools: Sequence[str] = ()
    run_id: str | None = field(default=None, init=False)

    def journaled(self, run_id: str, journal: Journal | None, *, announce: bool = True) -> None:
        """Remember the run's id (for the continue hint) and say where it is journaled."""
        if journal is None:
            return
        self.run_id = run_id
        if announce:
            err.print(
                escape_control(f"run {run_id}, journaled in {journal.where}"),
                highlight=False,
                markup=False,
                soft_wrap=True,
            )

    def resume_hint(self) -> None:
        """How to continue the run: said only when it stopped unfinished, and on one line."""
        if self.run_id is None:
            return
        again = "".join(f" --tools {spec}" for spec in self.resume_tools)
        err.print(
            escape_control(f"continue it with: stepweave resume {self.run_id}{again}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    def execute(self, main: Coroutine[Any, Any, T]) -> T:
        """``asyncio.run(main)``, with the shared endings for Ctrl-C and unusable parts."""
        from ..errors import DeviceError, JournalError

        try:
            return asyncio.run(main)
        except KeyboardInterrupt:
            self.resume_hint()
            fail("interrupted", code=INTERRUPTED_EXIT)
        except DeviceError as exc:  # the broker or the local agents could not be reached or started
            fail(f"{self.source}: {exc}")
        except JournalError as exc:  # the journal is unusable (it names the file)
            fail(str(exc))

    def report(
        self,
        path: Path | None,
        graph: TaskGraph,
        result: RunResult,
        events: Sequence[Event],
        title: str | None,
    ) -> None:
        """Write the HTML report when ``--report`` asked for one, and say where."""
        if path is None:
            return
        from ..report import write_html

        written = write_html(path, graph, result, list(events), title=title)
        if not self.json_lines:
            err.print(escape_control(f"report: {written}"), highlight=False, markup=False)

    def summary(
        self, result: RunResult, record: dict[str, Any], more: Callable[[], None] | None = None
    ) -> None:
        """``record`` as the last JSON line with ``--json``; else the summary table, then ``more``."""
        from ..console import json_default, summary_table

        if self.json_lines:
            print(json.dumps(record, default=json_default), flush=True)
            return
        out.print(summary_table(result))
        if more is not None:
            more()

    def finish(self, result: RunResult, reason: Callable[[RunResult], str]) -> None:
        """Exit 1 with ``reason(result)`` unless the run succeeded."""
        from ..result import RunStatus

        if result.ok:
            return
        if result.status is RunStatus.CANCELLED:  # unfinished: a failed run says what failed
            self.resume_hint()
        fail(reason(result))
