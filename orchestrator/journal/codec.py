"""Events to journal records and back.

A commit writes ONE row: the JSON array of every event in the batch, each event a short
JSON array (``["task_started", id, attempt, at]``). A row per event would cost a B-tree
insert per event; a row per batch costs one per commit, which is what keeps the journal
cheap next to a no-op task.

Only what a resume or a report needs is kept: the graph and every change to it, each
attempt's start, retries, and each task's end with its output or error. ``TaskReady`` and
``TaskProgress`` are dropped: they are the most frequent events and a resume needs neither.

Outputs are JSON. One longer than ``BLOB_THRESHOLD`` is stored once per run in ``blobs``
under its sha256 and the record refers to it, so ``runs list`` never reads megabytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from ..events import (
    Event,
    GraphEdited,
    RunEnded,
    RunResumed,
    RunStarted,
    TaskAdded,
    TaskEnded,
    TaskProgress,
    TaskReady,
    TaskRetrying,
    TaskStarted,
    _jsonable,
)
from ..graph import GraphEdit, Task, TaskGraph, TaskStatus
from ..result import TaskError

__all__ = [
    "BLOB_THRESHOLD",
    "Batch",
    "Blob",
    "decode_edit",
    "decode_error",
    "decode_graph",
    "decode_task",
    "dumps",
    "encode_batch",
    "encode_graph",
]

#: Outputs whose JSON is longer than this many characters go to the blobs table.
BLOB_THRESHOLD = 64 * 1024

#: (digest, bytes) of an output stored apart from its record.
Blob = tuple[str, bytes]

_SUCCEEDED = TaskStatus.SUCCEEDED
_SKIPPED = TaskStatus.SKIPPED

_SCALARS = (int, float, bool, type(None))


def _default(value: Any) -> Any:
    # Typed outputs (pydantic models, objects with to_dict, sets) as their JSON form;
    # the tool's declared return type turns them back into objects on resume.
    return _jsonable(value)


# One encoder for the process: json.dumps(default=...) would build a new one per call.
_ENCODER = json.JSONEncoder(default=_default, separators=(",", ":"), ensure_ascii=False)
_TASKS: TypeAdapter[list[Task]] = TypeAdapter(list[Task])


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


@dataclass(slots=True)
class Batch:
    """One group commit's worth of events, encoded."""

    text: str = "[]"
    blobs: list[Blob] = field(default_factory=list)
    #: Tasks that ended succeeded or skipped, and tasks added (for the runs table).
    done: int = 0
    added: int = 0
    ended: RunEnded | None = None


def encode_batch(events: list[Event], echoes: frozenset[str] = frozenset()) -> Batch:
    """Encode ``events`` as one JSON array; ``TaskEnded`` of ``echoes`` ids is left out.

    The frequent records (attempt starts and task ends) become tuples that the C JSON
    encoder turns into text in one call; the rare ones are encoded on their own. A task
    that starts and ends within one batch (most short ones) gets one record, its end with
    the start time, instead of two.
    """
    batch = Batch()
    parts: list[str] = []
    fast: list[tuple[Any, ...] | None] = []
    started: dict[str, int] = {}  # task id -> index in ``fast`` of its start record
    done = 0
    for event in events:
        # Most frequent first; isinstance also narrows the type for mypy.
        if isinstance(event, TaskEnded):
            task_id = event.task_id
            if echoes and task_id in echoes:
                continue
            status = event.status
            done += status is _SUCCEEDED or status is _SKIPPED
            error = event.error
            record: tuple[Any, ...] = (
                "task_ended",
                task_id,
                event.at,
                status,
                event.attempts,
                None if error is None else error.to_dict(),
                event.output,
            )
            index = started.pop(task_id, None)
            if index is not None:
                start = fast[index]
                assert start is not None
                fast[index] = None
                record = (*record, None, start[3])
            fast.append(record)
        elif isinstance(event, TaskStarted):
            started[event.task_id] = len(fast)
            fast.append(("task_started", event.task_id, event.attempt, event.at))
        elif isinstance(event, (TaskReady, TaskProgress)):
            continue
        else:
            text = _rare(event, batch)
            if text is not None:
                if fast:
                    parts.append(_fast(fast, batch))
                    fast = []
                    started.clear()
                parts.append(text)
    if fast:
        parts.append(_fast(fast, batch))
    batch.done = done
    batch.text = "[" + ",".join(parts) + "]"
    return batch


def _fast(slots: list[tuple[Any, ...] | None], batch: Batch) -> str:
    """Records as comma-separated JSON; large outputs moved to blobs."""
    records = [record for record in slots if record is not None]
    text = _ENCODER.encode(records)
    if len(text) <= BLOB_THRESHOLD:
        return text[1:-1]
    # Something in here is large: one by one, so only the large outputs become blobs.
    pieces = []
    for record in records:
        if record[0] == "task_ended" and not isinstance(record[6], _SCALARS):
            output = dumps(record[6])
            if len(output) > BLOB_THRESHOLD:
                raw = output.encode()
                digest = hashlib.sha256(raw).hexdigest()
                batch.blobs.append((digest, raw))
                record = (*record[:6], None, digest, *record[8:])
        pieces.append(dumps(record))
    return ",".join(pieces)


def _rare(event: Event, batch: Batch) -> str | None:
    at = event.at
    if isinstance(event, TaskRetrying):
        return dumps(["task_retrying", event.task_id, event.attempt, at, event.error.to_dict(), event.delay])
    if isinstance(event, TaskAdded):
        batch.added += 1
        return dumps(["task_added", at, _task(event.task)])
    if isinstance(event, GraphEdited):
        return dumps(["graph_edited", at, event.edit.model_dump(mode="json")])
    if isinstance(event, RunStarted):
        return encode_graph(event.graph, at)
    if isinstance(event, RunResumed):
        resumed = {"restored": event.restored, "retried": event.retried, "interrupted": event.interrupted}
        return dumps(["run_resumed", at, resumed])
    if isinstance(event, RunEnded):
        batch.ended = event
        return dumps(["run_ended", at, event.result.status.value, event.result.error])
    # Anyone else's event published into the run (a planner's model calls and their
    # usage, say): kept as its JSON form, for history and reports.
    return dumps(["event", event.kind, at, event.to_dict()])


def encode_graph(graph: TaskGraph, at: float) -> str:
    """The ``run_started`` record: the graph a run starts with."""
    # One call of pydantic's (Rust) serializer: 10,000 tasks in ~10 ms.
    tasks = _TASKS.dump_json(list(graph), exclude_defaults=True).decode()
    return f'["run_started",{at!r},{{"name":{dumps(graph.name)},"tasks":{tasks}}}]'


def _task(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", exclude_defaults=True)


# -- decoding ---------------------------------------------------------------------------


def decode_error(data: Mapping[str, Any] | None) -> TaskError | None:
    if not data:
        return None
    return TaskError(str(data["type"]), str(data["message"]), bool(data["retryable"]))


def decode_graph(data: Mapping[str, Any]) -> TaskGraph:
    return TaskGraph.from_dict(data)


def decode_task(data: Mapping[str, Any]) -> Task:
    return Task.model_validate(data)


def decode_edit(data: Mapping[str, Any]) -> GraphEdit:
    return GraphEdit.model_validate(data)
