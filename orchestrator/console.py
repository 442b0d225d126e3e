"""Terminal output for runs: a live view of steps while they run, a summary table after.

Both are consumers of the event stream, like the journal and the HTML report. On a
terminal the live view redraws in place; elsewhere (CI logs, pipes) it prints one line
per finished step so logs stay readable.

Everything shown that came from data (step ids, tool outputs, errors, progress messages)
goes through ``terminal_text``: a tool's output is not allowed to style, hide or move
text, retitle the terminal or clear it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .events import Event, RunStarted, TaskAdded, TaskEnded, TaskProgress, TaskRetrying, TaskStarted
from .graph import TaskStatus
from .result import RunResult, TaskError
from .terminal_text import escape_control, safe_text

__all__ = ["ProgressView", "event_json", "summary_table"]

_STYLE = {
    TaskStatus.PENDING: ("·", "dim"),
    TaskStatus.READY: ("○", "cyan"),
    TaskStatus.RUNNING: ("◐", "bold yellow"),
    TaskStatus.SUCCEEDED: ("✔", "green"),
    TaskStatus.FAILED: ("✘", "bold red"),
    TaskStatus.SKIPPED: ("↷", "dim"),
    TaskStatus.CANCELLED: ("⊘", "magenta"),
}


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for tool outputs: pydantic models as JSON, else repr."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def event_json(event: Event) -> str:
    """One JSON line for an event (tool outputs that are not JSON become their repr)."""
    return json.dumps(event.to_dict(), default=json_default, ensure_ascii=False)


def _short(value: Any, limit: int = 60) -> str:
    """One line of at most ``limit`` characters, control characters shown as escapes."""
    text = value if isinstance(value, str) else json.dumps(value, default=json_default, ensure_ascii=False)
    text = escape_control(" ".join(text.split()), multiline=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Row:
    __slots__ = ("attempt", "ended", "note", "started", "status", "tool")

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.status = TaskStatus.PENDING
        self.started: float | None = None
        self.ended: float | None = None
        self.attempt = 0
        self.note = ""


class ProgressView:
    """Follows events; renders the state of every step (use with ``live()``)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, _Row] = {}
        self._live: Live | None = None

    def live(self) -> Live:
        self._live = Live(self, console=self.console, refresh_per_second=8, transient=True)
        return self._live

    def pause(self) -> None:
        """Stop redrawing (to ask the user something); ``resume`` continues."""
        if self._live is not None:
            self._live.stop()

    def resume(self) -> None:
        if self._live is not None:
            self._live.start()

    def update(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            for task in event.graph:
                self.rows[task.id] = _Row(task.tool)
        elif isinstance(event, TaskAdded):
            self.rows[event.task.id] = _Row(event.task.tool)
        elif isinstance(event, TaskStarted):
            row = self._row(event.task_id)
            row.status = TaskStatus.RUNNING
            row.started = row.started or event.at
            row.attempt = event.attempt
            row.note = "" if event.attempt == 1 else f"attempt {event.attempt}"
        elif isinstance(event, TaskRetrying):
            self._row(
                event.task_id
            ).note = f"retrying in {event.delay:.1f}s: {_short(event.error.message, 50)}"
        elif isinstance(event, TaskProgress):
            fraction = f"{event.fraction:.0%} " if event.fraction is not None else ""
            self._row(event.task_id).note = f"{fraction}{_short(event.message, 70)}"
        elif isinstance(event, TaskEnded):
            row = self._row(event.task_id)
            row.status = event.status
            row.ended = event.at
            row.note = _short(event.error.message, 70) if event.error else ""
            if not self.console.is_terminal:
                self._print_line(event.task_id, row)
        elif hasattr(event, "task_id"):
            row = self._row(event.task_id)
            if row.status is TaskStatus.PENDING:
                row.status = TaskStatus.READY

    def _row(self, task_id: str) -> _Row:
        return self.rows.setdefault(task_id, _Row("?"))

    def _print_line(self, task_id: str, row: _Row) -> None:
        icon, style = _STYLE[row.status]
        took = f" {row.ended - row.started:.2f}s" if row.started and row.ended else ""
        note = f"  {row.note}" if row.note else ""
        self.console.print(
            safe_text(f"{icon} {task_id} {row.status.value}{took}{note}", style, multiline=False)
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = time.time()
        table = Table(box=None, padding=(0, 1), show_header=False)
        counts: dict[TaskStatus, int] = {}
        for task_id, row in self.rows.items():
            counts[row.status] = counts.get(row.status, 0) + 1
            icon, style = _STYLE[row.status]
            elapsed = ""
            if row.started is not None:
                elapsed = f"{(row.ended or now) - row.started:5.1f}s"
            table.add_row(
                Text(icon, style=style),
                safe_text(task_id, multiline=False),
                safe_text(row.tool, "dim", multiline=False),
                elapsed,
                safe_text(row.note, multiline=False),
            )
        if not self.rows:  # the first frame, before the run has said what it holds
            yield Text("starting…", style="bold")
            return
        done = sum(n for s, n in counts.items() if s.is_terminal)
        noun = "step" if len(self.rows) == 1 else "steps"
        yield Text(f"{done}/{len(self.rows)} {noun} done", style="bold")
        yield table


def summary_table(result: RunResult) -> Table:
    """One row per step: status, attempts, duration, and the output or the error."""
    title = f"run {result.run_id}: {result.status.value} in {result.duration:.2f}s"
    table = Table(title=safe_text(title))
    for column in ("step", "tool", "status", "attempts", "time", "output / error"):
        table.add_column(column, overflow="fold")
    for task in result.tasks.values():
        icon, style = _STYLE[task.status]
        took = f"{task.duration:.2f}s" if task.duration is not None else "-"
        detail = _error_text(task.error) if task.error else _short(task.output)
        table.add_row(
            safe_text(task.id),
            safe_text(task.tool),
            Text(f"{icon} {task.status.value}", style=style),
            str(task.attempts),
            took,
            safe_text(detail, "red" if task.error else ""),
        )
    return table


def _error_text(error: TaskError) -> str:
    """``Type: message``, without saying it twice (``Cancelled: cancelled: …``)."""
    if error.message.lower().startswith(error.type.lower() + ":"):
        return error.message[:1].upper() + error.message[1:]
    return f"{error.type}: {error.message}"
