"""Reading runs back: the run list, and one run rebuilt from its events.

A run is rebuilt by replaying its rows in order: the graph it started with, the tasks that
streamed in, every ``GraphEdit``, and each task's attempts and end. What comes out is
enough to resume it (which tasks keep their outcome, which were in flight, at which
attempt) and to draw its HTML report long after the process is gone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorKind, JournalCorrupt, RunNotFound
from ..events import (
    Event,
    GraphEdited,
    RunEnded,
    RunResumed,
    RunStarted,
    TaskAdded,
    TaskEnded,
    TaskRetrying,
    TaskStarted,
)
from ..graph import Task, TaskGraph, TaskStatus
from ..result import RunResult, RunStatus, TaskResult
from .backend import Backend
from .codec import decode_edit, decode_error, decode_graph, decode_task

__all__ = ["RunHistory", "RunRecord", "list_runs", "load_run", "read_record"]

_ITEM = re.compile(r"^(.*)\[([0-9]+)\]$")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One line of ``stepweave runs list``."""

    run_id: str
    name: str | None
    #: ``queued`` (waiting for a worker), ``running`` (live), ``interrupted`` (its process
    #: died or its lease expired), or the run's final status.
    status: str
    started_at: float
    ended_at: float | None
    tasks_total: int
    tasks_done: int
    error: str | None
    owner: str | None
    meta: dict[str, Any]

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(slots=True)
class RunHistory:
    """A run rebuilt from the journal."""

    record: RunRecord
    #: The graph to resume: started-with graph, streamed tasks and edits (no for_each items).
    graph: TaskGraph
    #: for_each items by id (``fan[0]``…), as they were added when their parent fanned out.
    items: dict[str, Task]
    #: Every task's latest known outcome; RUNNING means it was in flight when the run stopped.
    results: dict[str, TaskResult]
    #: The journaled events, as event objects (for reports).
    events: list[Event] = field(default_factory=list)
    #: Events others published into the run (``Run.publish``), as their ``to_dict()``.
    extras: list[dict[str, Any]] = field(default_factory=list)
    #: Tasks with an attempt started and not completed (see ``in_flight``).
    unsettled: set[str] = field(default_factory=set)

    def task(self, task_id: str) -> Task:
        return self.graph[task_id] if task_id in self.graph else self.items[task_id]

    def in_flight(self) -> list[str]:
        """Tasks whose last attempt started and never completed: running when the process
        died, cancelled mid-call, or failed as ``Interrupted`` by an earlier resume (for_each
        parents excluded). Whether their effect happened is unknown."""
        return [
            tid
            for tid, r in self.results.items()
            if tid in self.unsettled and r.status not in _SETTLED and self.task(tid).for_each is None
        ]

    def result(self) -> RunResult:
        """The run's result as the journal knows it (an unfinished run reads as cancelled)."""
        record = self.record
        tasks = {**self.results}
        if record.status in ("succeeded", "failed", "cancelled"):
            status, error = RunStatus(record.status), record.error
        else:
            status = RunStatus.CANCELLED
            error = f"interrupted: the process stopped mid-run (`stepweave resume {record.run_id}`)"
        ended = record.ended_at or max(
            (t.ended_at or t.started_at or record.started_at for t in tasks.values()),
            default=record.started_at,
        )
        return RunResult(record.run_id, status, tasks, record.started_at, ended, error)


_SETTLED = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})


def read_record(row: tuple[Any, ...], alive: bool) -> RunRecord:
    run_id, name, status, started, ended, total, done, error, owner, meta = row
    if status == "running" and not alive:
        status = "interrupted"
    return RunRecord(run_id, name, status, started, ended, total, done, error, owner, json.loads(meta))


def list_runs(backend: Backend, *, limit: int | None = None) -> list[RunRecord]:
    return [read_record(row, alive) for row, alive in backend.list_rows(limit)]


def load_run(backend: Backend, run_id: str) -> RunHistory:
    """Rebuild ``run_id``; ``RunNotFound`` if it is not there, ``JournalCorrupt`` if unreadable."""
    rows = backend.read(run_id)
    if rows is None:
        raise RunNotFound(run_id, backend.where)
    record = read_record(rows.row, rows.alive)
    replay = _Replay(record, rows.blobs)
    for seq, data in rows.batches:
        try:
            for item in json.loads(data):
                replay.apply(item)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise JournalCorrupt(
                f"{backend.where}: run {run_id!r}, batch {seq} is unreadable: {exc}"
            ) from None
    if replay.graph is None:
        raise JournalCorrupt(
            f"{backend.where}: run {run_id!r} has no recorded start (the journal is incomplete)"
        )
    return RunHistory(
        record, replay.graph, replay.items, replay.results, replay.events, replay.extras, replay.unsettled
    )


class _Replay:
    """Applies journal rows in order."""

    def __init__(self, record: RunRecord, blobs: dict[str, bytes]) -> None:
        self.record = record
        self.blobs = blobs
        self.graph: TaskGraph | None = None
        self.items: dict[str, Task] = {}
        self.results: dict[str, TaskResult] = {}
        self.events: list[Event] = []
        self.extras: list[dict[str, Any]] = []
        self.unsettled: set[str] = set()

    def apply(self, item: list[Any]) -> None:
        kind = item[0]
        run_id = self.record.run_id
        if kind == "task_started":
            _, task_id, attempt, at = item
            result = self.results[task_id]
            result.status = TaskStatus.RUNNING
            result.attempts = attempt
            self.unsettled.add(task_id)
            result.started_at = result.started_at or at
            self.events.append(TaskStarted(run_id=run_id, task_id=task_id, attempt=attempt, at=at))
        elif kind == "task_ended":
            self._ended(*item[1:])
        elif kind == "task_retrying":
            _, task_id, attempt, at, error_data, delay = item
            error = decode_error(error_data)
            assert error is not None
            self.events.append(
                TaskRetrying(run_id=run_id, task_id=task_id, attempt=attempt, error=error, delay=delay, at=at)
            )
        elif kind == "task_added":
            self._added(decode_task(item[2]), item[1])
        elif kind == "graph_edited":
            _, at, data = item
            edit = decode_edit(data)
            self.graph = self._graph().apply(edit)
            for tid in edit.remove:
                self.results.pop(tid, None)
            for task in (*edit.add, *edit.update):
                self.results.setdefault(task.id, TaskResult(task.id, task.tool)).tool = task.tool
            self.events.append(GraphEdited(run_id=run_id, edit=edit, at=at))
        elif kind == "run_started":
            _, at, data = item
            if self.graph is None:
                self.graph = decode_graph(data)
                for task in self.graph:
                    self.results[task.id] = TaskResult(task.id, task.tool)
            self.events.append(RunStarted(run_id=run_id, graph=self._graph(), at=at))
        elif kind == "run_resumed":
            _, at, data = item
            # The run was down from its last record to this one. A task started before the
            # stop and not kept (in flight, cancelled or failed, so it runs again) would
            # otherwise count that downtime as its own time in `runs show`.
            alive = self.events[-1].at if self.events else None
            if alive is not None and at > alive:
                for result in self.results.values():
                    if result.started_at is not None and result.status not in _SETTLED:
                        result.paused += at - alive
            self.events.append(RunResumed(run_id=run_id, at=at, **{k: tuple(v) for k, v in data.items()}))
        elif kind == "run_ended":
            _, at, status, error = item
            self.events.append(RunEnded(run_id=run_id, result=self._partial_result(status, error), at=at))
        elif kind == "event":
            self.extras.append(item[3])
        else:
            raise ValueError(f"unknown record kind {kind!r}")

    def _added(self, task: Task, at: float) -> None:
        graph = self._graph()
        match = _ITEM.match(task.id)
        parent = graph.tasks.get(match.group(1)) if match else None
        if parent is not None and parent.for_each is not None:
            self.items[task.id] = task
        elif task.id not in graph:  # a run adds a task once; a repeat would change nothing
            graph.add(task)
        self.results.setdefault(task.id, TaskResult(task.id, task.tool))
        self.events.append(TaskAdded(run_id=self.record.run_id, task=task, at=at))

    def _graph(self) -> TaskGraph:
        if self.graph is None:
            raise ValueError("event before the run's start")
        return self.graph

    def _ended(
        self,
        task_id: str,
        at: float,
        status: str,
        attempts: int,
        error: dict[str, Any] | None,
        output: Any,
        blob: str | None = None,
        started: float | None = None,
    ) -> None:
        # ["task_ended", id, at, status, attempts, error, output(, blob digest(, started at))]
        result = self.results[task_id]
        if started is not None:  # started and ended within one commit: one record for both
            self.unsettled.add(task_id)
            result.started_at = result.started_at or started
            self.events.append(
                TaskStarted(run_id=self.record.run_id, task_id=task_id, attempt=attempts, at=started)
            )
        result.status = TaskStatus(status)
        # A task cancelled before it started (attempts 0) keeps the count of earlier ones.
        result.attempts = max(result.attempts, attempts)
        result.error = decode_error(error)
        result.ended_at = at
        # Its call completed (with an output or an error of its own): the effect is known.
        # A cancelled call is not: it stays unsettled, as does one an earlier resume
        # failed as Interrupted.
        interrupted = result.error is not None and result.error.type == ErrorKind.INTERRUPTED
        if result.status is not TaskStatus.CANCELLED and not interrupted:
            self.unsettled.discard(task_id)
        if blob is not None:
            raw = self.blobs.get(blob)
            if raw is None:
                raise ValueError(f"output blob {blob} of task {task_id!r} is missing")
            output = json.loads(raw.decode())
        result.output = output
        self.events.append(
            TaskEnded(
                run_id=self.record.run_id,
                task_id=task_id,
                status=result.status,
                attempts=attempts,
                output=output,
                error=result.error,
                at=at,
            )
        )

    def _partial_result(self, status: str, error: str | None) -> RunResult:
        record = self.record
        return RunResult(
            record.run_id,
            RunStatus(status),
            dict(self.results),
            record.started_at,
            record.ended_at or record.started_at,
            error,
        )
