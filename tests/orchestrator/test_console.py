"""The terminal view of a run: first frame, step counts and error lines read right."""

from __future__ import annotations

import io

from rich.console import Console

from orchestrator import RunStarted, Task, TaskGraph
from orchestrator.console import ProgressView, summary_table
from orchestrator.graph import TaskStatus
from orchestrator.result import RunResult, RunStatus, TaskError, TaskResult


def render(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(renderable)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_first_frame_and_one_step() -> None:
    view = ProgressView(Console(file=io.StringIO()))
    assert render(view).strip() == "starting…"  # not "0/0 steps done"
    view.update(RunStarted(run_id="r", graph=TaskGraph([Task(id="only", tool="t")])))
    assert render(view).startswith("0/1 step done")


def test_an_error_whose_message_repeats_its_type_is_said_once() -> None:
    cancelled = TaskError("Cancelled", "cancelled: run cancelled", False)
    failed = TaskError("RuntimeError", "the disk is full", False)
    tasks = {
        "a": TaskResult(id="a", tool="t", status=TaskStatus.CANCELLED, error=cancelled),
        "b": TaskResult(id="b", tool="t", status=TaskStatus.FAILED, error=failed),
    }
    result = RunResult(run_id="r", status=RunStatus.CANCELLED, tasks=tasks, started_at=0.0, ended_at=1.5)
    text = render(summary_table(result))
    assert "Cancelled: run cancelled" in text and "cancelled: cancelled" not in text.lower()
    assert "RuntimeError: the disk is full" in text
