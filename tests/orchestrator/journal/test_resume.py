"""Journaling runs and resuming them, in process (the crash tests use real processes)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator import (
    JournalError,
    Orchestrator,
    ResumeError,
    RunResumed,
    RunStatus,
    Task,
    TaskEnded,
    TaskGraph,
    TaskStatus,
)
from orchestrator.journal import Journal
from tools import ToolContext, tool

from .conftest import raw


class Effects:
    """Side effects the tools leave, to count how often each step really ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = asyncio.Event()


@pytest.fixture
def effects() -> Effects:
    return Effects()


def make_tools(effects: Effects, *, hang_idempotent: bool | None = True) -> list[Any]:
    @tool
    async def add(ctx: ToolContext, a: int, b: int = 0) -> int:
        effects.calls.append(ctx.task_id)
        return a + b

    @tool(name="hang", idempotent=hang_idempotent)
    async def hang(ctx: ToolContext, value: int) -> int:
        effects.calls.append(ctx.task_id)
        await effects.release.wait()
        return value

    return [add, hang]


def chain() -> TaskGraph:
    return TaskGraph(
        [
            Task(id="a", tool="add", args={"a": 1}),
            Task(id="b", tool="add", args={"a": "${{ steps.a.output }}", "b": 10}),
            Task(id="slow", tool="hang", args={"value": 7}, deps=("b",)),
            Task(id="side", tool="add", args={"a": 100}),
            Task(id="last", tool="add", args={"a": "${{ steps.slow.output }}", "b": "${{ steps.b.output }}"}),
        ],
        name="chain",
    )


async def run_until_started(orchestrator: Orchestrator, graph: TaskGraph, task_id: str) -> str:
    """Start a run, leave it (cancelled, as a crash would) once ``task_id`` is running."""
    run = orchestrator.start(graph)
    async with run:
        async for event in run.events():
            if event.kind == "task_started" and getattr(event, "task_id", None) == task_id:
                break
    return run.run_id


def forget_end(journal: Journal, run_id: str) -> None:
    """Make a cleanly cancelled run look like its process died mid-run (kill -9)."""
    with raw(journal) as conn:
        rows = conn.execute("SELECT seq, data FROM batches WHERE run_id = ?", (run_id,))
        for seq, data in rows:
            kept = [_uncancelled(r) for r in json.loads(data) if r[0] != "run_ended"]
            kept = [r for r in kept if r is not None]
            conn.execute(
                "UPDATE batches SET data = ? WHERE run_id = ? AND seq = ?", (json.dumps(kept), run_id, seq)
            )
        conn.execute(
            "UPDATE runs SET status = 'running', ended_at = NULL, owner = 'elsewhere-host:1' WHERE run_id = ?",
            (run_id,),
        )
        # A host we are not on counts as alive; a dead local pid is what a crash leaves.
        conn.execute("UPDATE runs SET owner = ? WHERE run_id = ?", (_dead_owner(), run_id))


def _uncancelled(record: list[Any]) -> list[Any] | None:
    """The record as a crash would have left it: a task cancelled by the clean exit never
    ended; if its start was committed with its end (one record), only the start remains."""
    if record[0] != "task_ended" or record[3] != "cancelled":
        return record
    if len(record) > 8:  # ["task_ended", id, at, status, attempts, error, output, blob, started]
        return ["task_started", record[1], record[4], record[8]]
    return None


def _dead_owner() -> str:
    import socket

    return f"{socket.gethostname()}:999999999"


async def test_resume_keeps_finished_steps_and_reruns_in_flight_one(
    journal: Journal, effects: Effects
) -> None:
    first = Orchestrator(tools=make_tools(effects), journal=journal)
    run_id = await run_until_started(first, chain(), "slow")
    forget_end(journal, run_id)
    assert sorted(effects.calls) == ["a", "b", "side", "slow"]
    history = journal.load(run_id)
    assert history.in_flight() == ["slow"]
    assert journal.runs()[0].status == "interrupted"

    effects.calls.clear()
    effects.release.set()
    second = Orchestrator(tools=make_tools(effects), journal=journal)
    async with second.resume(run_id) as run:
        result = await run.wait()
        events = [e async for e in run.events()]
    assert result.ok, result.error
    assert effects.calls == ["slow", "last"]  # a, b and side are not repeated
    assert result.outputs == {"a": 1, "b": 11, "slow": 7, "side": 100, "last": 18}
    assert result["slow"].attempts == 2  # same task, the attempt counts on
    resumed = next(e for e in events if isinstance(e, RunResumed))
    assert set(resumed.restored) == {"a", "b", "side"} and resumed.retried == ("slow",)
    record = journal.runs()[0]
    assert (record.status, record.tasks_done, record.tasks_total) == ("succeeded", 5, 5)


async def test_a_success_is_durable_before_its_dependents_start(journal: Journal) -> None:
    seen: dict[str, list[str]] = {}

    def committed(run_id: str) -> list[str]:
        with raw(journal) as conn:
            rows = conn.execute("SELECT data FROM batches WHERE run_id = ?", (run_id,))
        return sorted(r[1] for (data,) in rows for r in json.loads(data) if r[0] == "task_ended")

    @tool
    def probe(ctx: ToolContext) -> str:
        # Another connection, as a crash-surviving reader sees the file.
        seen[ctx.task_id] = committed(ctx.run_id)
        return ctx.task_id

    graph = TaskGraph(
        [
            Task(id="a1", tool="probe"),
            Task(id="a2", tool="probe"),
            Task(id="b", tool="probe", deps=("a1", "a2")),
            Task(id="c", tool="probe", deps=("b",)),
        ]
    )
    result = await Orchestrator(tools=[probe], journal=journal).run(graph)
    assert result.ok
    assert {"a1", "a2"} <= set(seen["b"])
    assert {"a1", "a2", "b"} <= set(seen["c"])


async def test_non_idempotent_in_flight_step_is_failed_by_default(journal: Journal, effects: Effects) -> None:
    run_id = await run_until_started(
        Orchestrator(tools=make_tools(effects, hang_idempotent=False), journal=journal), chain(), "slow"
    )
    forget_end(journal, run_id)
    effects.calls.clear()
    effects.release.set()
    orchestrator = Orchestrator(tools=make_tools(effects, hang_idempotent=False), journal=journal)
    async with orchestrator.resume(run_id) as run:
        result = await run.wait()
    assert result.status is RunStatus.FAILED
    assert effects.calls == []
    error = result["slow"].error
    assert error is not None and error.type == "Interrupted"
    assert "not marked idempotent" in error.message and "--retry-inflight retry" in error.message
    assert result["last"].status is TaskStatus.CANCELLED


@pytest.mark.parametrize("answer", [True, False])
async def test_in_flight_policy_can_ask(journal: Journal, effects: Effects, answer: bool) -> None:
    run_id = await run_until_started(
        Orchestrator(tools=make_tools(effects, hang_idempotent=False), journal=journal), chain(), "slow"
    )
    forget_end(journal, run_id)
    asked: list[str] = []

    async def policy(task: Task) -> bool:
        asked.append(task.id)
        return answer

    effects.release.set()
    orchestrator = Orchestrator(tools=make_tools(effects, hang_idempotent=False), journal=journal)
    async with orchestrator.resume(run_id, retry_inflight=policy) as run:
        result = await run.wait()
    assert asked == ["slow"]
    assert result.ok is answer


async def test_write_ahead_start_for_non_idempotent_steps(journal: Journal) -> None:
    """An explicitly non-idempotent step's start is committed before its tool runs."""
    starts: list[list[str]] = []

    @tool(idempotent=False)
    def charge(ctx: ToolContext) -> str:
        with raw(journal) as conn:
            rows = conn.execute("SELECT data FROM batches WHERE run_id = ?", (ctx.run_id,))
        starts.append([r[1] for (data,) in rows for r in json.loads(data) if r[0] == "task_started"])
        return ctx.idempotency_key

    result = await Orchestrator(tools=[charge], journal=journal).run(
        [Task(id="pay", tool="charge")], run_id="r1"
    )
    assert result.ok and result.outputs == {"pay": "r1/pay"}
    assert starts == [["pay"]]


async def test_failed_run_resumes_only_what_did_not_succeed(journal: Journal) -> None:
    calls: list[str] = []
    broken = {"flaky": True}

    @tool
    def step(ctx: ToolContext) -> str:
        calls.append(ctx.task_id)
        if broken.get(ctx.task_id):
            raise RuntimeError("upstream is down")
        return ctx.task_id.upper()

    graph = TaskGraph(
        [
            Task(id="ok", tool="step"),
            Task(id="flaky", tool="step", deps=("ok",)),
            Task(id="end", tool="step", deps=("flaky",)),
        ]
    )
    orchestrator = Orchestrator(tools=[step], journal=journal)
    failed = await orchestrator.run(graph)
    assert failed.status is RunStatus.FAILED
    broken.clear()
    calls.clear()
    async with orchestrator.resume(failed.run_id) as run:
        result = await run.wait()
    assert result.ok and calls == ["flaky", "end"]
    assert result.outputs == {"ok": "OK", "flaky": "FLAKY", "end": "END"}
    assert result["flaky"].attempts == 2
    with pytest.raises(ResumeError, match="already succeeded"):
        orchestrator.resume(failed.run_id)


class Summary(BaseModel):
    words: int
    text: str


async def test_typed_and_large_outputs_survive_the_journal(journal: Journal) -> None:
    big = "x" * 200_000  # beyond the blob threshold

    @tool
    def summarise() -> Summary:
        return Summary(words=2, text=big)

    @tool
    def length(summary: Summary) -> int:
        return len(summary.text) + summary.words

    orchestrator = Orchestrator(tools=[summarise, length], journal=journal)
    graph = TaskGraph(
        [
            Task(id="s", tool="summarise"),
            Task(id="n", tool="length", args={"summary": "${{ steps.s.output }}"}, deps=("s",)),
        ]
    )
    run = orchestrator.start(graph)
    async with run:
        async for event in run.events():
            if isinstance(event, TaskEnded) and event.task_id == "s":
                break
    forget_end(journal, run.run_id)
    history = journal.load(run.run_id)
    assert history.results["s"].output == {"words": 2, "text": big}
    with raw(journal) as conn:
        assert conn.execute("SELECT count(*) FROM blobs")[0][0] == 1
    async with orchestrator.resume(run.run_id) as resumed:
        result = await resumed.wait()
    assert result.ok
    assert isinstance(result["s"].output, Summary)  # typed again by the declared return type
    assert result.outputs["n"] == 200_002


async def test_for_each_items_that_finished_are_not_repeated(journal: Journal, effects: Effects) -> None:
    @tool(idempotent=True)
    async def visit(ctx: ToolContext, n: int) -> int:
        effects.calls.append(ctx.task_id)
        if n == 2:
            await effects.release.wait()
        return n * n

    graph = TaskGraph(
        [Task(id="sq", tool="visit", for_each="${{ [0, 1, 2, 3] }}", args={"n": "${{ item }}"})]
    )
    orchestrator = Orchestrator(tools=[visit], journal=journal)
    run = orchestrator.start(graph)
    ended: set[str] = set()
    async with run:
        async for event in run.events():
            if isinstance(event, TaskEnded):
                ended.add(event.task_id)
            if {"sq[0]", "sq[1]", "sq[3]"} <= ended:
                break
    forget_end(journal, run.run_id)
    effects.calls.clear()
    effects.release.set()
    async with orchestrator.resume(run.run_id) as resumed:
        result = await resumed.wait()
    assert result.ok, (result.error, {t.id: (t.status, t.error) for t in result.tasks.values()})
    assert effects.calls == ["sq[2]"]
    assert result.outputs["sq"] == [0, 1, 4, 9]


async def test_two_runs_write_the_same_journal_at_once(journal: Journal) -> None:
    @tool
    async def tick(n: int) -> int:
        await asyncio.sleep(0)
        return n

    def graph(name: str) -> TaskGraph:
        tasks = [Task(id="t0", tool="tick", args={"n": 0})]
        tasks += [Task(id=f"t{i}", tool="tick", args={"n": i}, deps=(f"t{i - 1}",)) for i in range(1, 60)]
        return TaskGraph(tasks, name=name)

    # Two orchestrators, two connections and writer threads, interleaving commits.
    left = Orchestrator(tools=[tick], journal=journal.where)
    right = Orchestrator(tools=[tick], journal=Journal(journal.where))
    results = await asyncio.gather(left.run(graph("left")), right.run(graph("right")))
    assert all(r.ok for r in results)
    records = {r.name: r for r in journal.runs()}
    assert set(records) == {"left", "right"}
    for result in results:
        history = journal.load(result.run_id)
        assert {tid: r.output for tid, r in history.results.items()} == result.outputs
        assert records[history.record.name].tasks_done == 60


async def test_resume_refuses_a_live_run_and_an_unknown_id(journal: Journal, effects: Effects) -> None:
    orchestrator = Orchestrator(tools=make_tools(effects), journal=journal)
    run = orchestrator.start(chain())
    async with run:
        async for event in run.events():
            if event.kind == "task_started" and getattr(event, "task_id", None) == "slow":
                break
        with pytest.raises(ResumeError, match="still running"):
            orchestrator.resume(run.run_id)
        run.cancel()
    with pytest.raises(JournalError, match="no run with id 'nope'") as caught:
        orchestrator.resume("nope")
    assert isinstance(caught.value, LookupError)
    assert journal.where in str(caught.value)


async def test_a_run_id_cannot_be_journaled_twice(journal: Journal) -> None:
    @tool
    def one() -> int:
        return 1

    orchestrator = Orchestrator(tools=[one], journal=journal)
    await orchestrator.run([Task(id="x", tool="one")], run_id="same")
    with pytest.raises(JournalError, match="already journaled"):
        await orchestrator.run([Task(id="x", tool="one")], run_id="same")


def test_resume_needs_a_journal() -> None:
    with pytest.raises(ValueError, match="needs a journal"):
        Orchestrator().resume("r")


async def test_no_journal_by_default(tmp_path: Path) -> None:
    @tool
    def one() -> int:
        return 1

    orchestrator = Orchestrator(tools=[one])
    assert orchestrator.journal is None
    assert (await orchestrator.run([Task(id="x", tool="one")])).ok
    assert not (tmp_path / "default-journal.sqlite3").exists()


async def test_published_events_are_journaled(journal: Journal) -> None:
    """A planner's own events (model calls and their usage) go into the run's journal."""
    from dataclasses import dataclass
    from typing import ClassVar

    from orchestrator import Event

    @dataclass(slots=True, kw_only=True)
    class ModelCalled(Event):
        kind: ClassVar[str] = "model_called"
        tokens: int

    @tool
    def one() -> int:
        return 1

    run = Orchestrator(tools=[one], journal=journal).start([Task(id="x", tool="one")])
    async with run:
        run.publish(ModelCalled(run_id=run.run_id, tokens=321))
        with pytest.raises(ValueError, match="published into run"):
            run.publish(ModelCalled(run_id="other", tokens=1))
        assert (await run.wait()).ok
    extras = journal.load(run.run_id).extras
    assert [(e["event"], e["tokens"]) for e in extras] == [("model_called", 321)]


async def test_a_failing_journal_stops_the_run(journal: Journal, monkeypatch: pytest.MonkeyPatch) -> None:
    """No durability, no dependents: a commit that fails (a full disk) fails the run."""
    from orchestrator.journal.writer import RunRecorder

    commit = RunRecorder._commit
    commits = 0

    def failing(self: RunRecorder, writer: Any, events: list[Any]) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise sqlite3.OperationalError("database or disk is full")
        commit(self, writer, events)

    monkeypatch.setattr(RunRecorder, "_commit", failing)
    ran: list[str] = []

    @tool
    def step(ctx: ToolContext) -> str:
        ran.append(ctx.task_id)
        return ctx.task_id

    graph = TaskGraph([Task(id=f"s{i}", tool="step", deps=(f"s{i - 1}",) if i else ()) for i in range(6)])
    result = await Orchestrator(tools=[step], journal=journal).run(graph)
    assert result.status is RunStatus.FAILED
    assert result.error is not None and journal.where in result.error and "disk is full" in result.error
    assert len(ran) < 6


async def test_a_resumed_run_that_crashes_again_resumes_again(journal: Journal, effects: Effects) -> None:
    run_id = await run_until_started(
        Orchestrator(tools=make_tools(effects), journal=journal), chain(), "slow"
    )
    forget_end(journal, run_id)
    # The first resume dies too, with `slow` in flight again.
    first = Orchestrator(tools=make_tools(effects), journal=journal).resume(run_id)
    async with first:
        async for event in first.events():
            if event.kind == "task_started" and getattr(event, "task_id", None) == "slow":
                break
    forget_end(journal, run_id)
    assert journal.load(run_id).in_flight() == ["slow"]
    effects.calls.clear()
    effects.release.set()
    async with Orchestrator(tools=make_tools(effects), journal=journal).resume(run_id) as run:
        result = await run.wait()
    assert result.ok and effects.calls == ["slow", "last"]
    assert result["slow"].attempts == 3
    assert journal.load(run_id).results["last"].output == 18


async def test_an_interrupted_step_stays_in_doubt_until_the_policy_says_retry(journal: Journal) -> None:
    """Two non-idempotent steps in flight; the first resume fails them (and cancels the
    rest); the next resume must ask again, not quietly run them."""
    release = asyncio.Event()
    calls: list[str] = []

    @tool(idempotent=False)
    async def pay(ctx: ToolContext) -> str:
        calls.append(ctx.task_id)
        await release.wait()
        return ctx.task_id

    graph = TaskGraph(
        [
            Task(id="p1", tool="pay"),
            Task(id="p2", tool="pay"),
            Task(id="after", tool="pay", deps=("p1", "p2")),
        ]
    )
    orchestrator = Orchestrator(tools=[pay], journal=journal)
    run = orchestrator.start(graph)
    async with run:
        started: set[str] = set()
        async for event in run.events():
            if event.kind == "task_started":
                started.add(getattr(event, "task_id", ""))
            if started == {"p1", "p2"}:
                break
    assert journal.load(run.run_id).in_flight() == ["p1", "p2"]
    release.set()
    calls.clear()
    async with orchestrator.resume(run.run_id, retry_inflight="fail") as first:
        failed = await first.wait()
    assert failed.status is RunStatus.FAILED and calls == []
    assert journal.load(run.run_id).in_flight() == ["p1", "p2"]
    asked: list[str] = []

    async def policy(task: Task) -> bool:
        asked.append(task.id)
        return True

    async with orchestrator.resume(run.run_id, retry_inflight=policy) as second:
        result = await second.wait()
    assert result.ok and asked == ["p1", "p2"] and sorted(calls) == ["after", "p1", "p2"]
    assert result["p1"].attempts == 2


#: Where each record kind keeps its times (see the codec): shifted together to age a run.
_TIMES = {
    "task_started": (3,),
    "task_ended": (2, 8),
    "task_retrying": (3,),
    "task_added": (1,),
    "graph_edited": (1,),
    "run_started": (1,),
    "run_resumed": (1,),
    "run_ended": (1,),
}


def age(journal: Journal, run_id: str, seconds: float) -> None:
    """Move everything the run recorded ``seconds`` into the past: as if it crashed then."""
    with raw(journal) as conn:
        rows = list(conn.execute("SELECT seq, data FROM batches WHERE run_id = ?", (run_id,)))
        for seq, data in rows:
            records = json.loads(data)
            for record in records:
                for index in _TIMES.get(record[0], ()):
                    if index < len(record) and isinstance(record[index], float):
                        record[index] -= seconds
            conn.execute(
                "UPDATE batches SET data = ? WHERE run_id = ? AND seq = ?", (json.dumps(records), run_id, seq)
            )
        conn.execute("UPDATE runs SET started_at = started_at - ? WHERE run_id = ?", (seconds, run_id))


async def test_downtime_between_a_crash_and_the_resume_is_not_step_time(
    journal: Journal, effects: Effects
) -> None:
    run_id = await run_until_started(
        Orchestrator(tools=make_tools(effects), journal=journal), chain(), "slow"
    )
    forget_end(journal, run_id)
    age(journal, run_id, 3600.0)  # it crashed an hour ago
    effects.release.set()
    async with Orchestrator(tools=make_tools(effects), journal=journal).resume(run_id) as run:
        assert (await run.wait()).ok
    slow = journal.load(run_id).result().tasks["slow"]
    assert slow.paused > 3590  # the hour the run was down ...
    assert slow.duration is not None and 0 <= slow.duration < 60  # ... is not the step's time
    assert slow.ended_at is not None and slow.started_at is not None
    assert slow.ended_at - slow.started_at > 3590  # (its first start is still an hour back)
    kept = journal.load(run_id).result().tasks["a"]
    assert kept.paused == 0.0  # finished before the crash: nothing to leave out
