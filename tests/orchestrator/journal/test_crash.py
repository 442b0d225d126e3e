"""Crashes with real processes: ``kill -9`` mid-run, then resume from the journal.

Nothing sleeps to paper over a race: the tests wait for side effects to appear in files
(each wait bounded by a timeout) and kill at those points.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator import Orchestrator, Run, RunResult, TaskStatus
from orchestrator.journal import Journal
from tests.e2e.test_cli import stepweave_command

from .conftest import BACKENDS, new_journal
from .crash_tools import mark

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

WORKFLOW = """\
name: crash-test
steps:
  - id: a
    tool: mark
    args: {name: a}
  - id: b
    tool: mark
    args: {name: b}
    needs: a
  - id: c
    tool: mark
    args: {name: c}
    needs: a
  - id: slow
    tool: slow_mark
    args: {name: slow}
    needs: [b, c]
  - id: plain
    tool: slow_plain
    args: {name: plain}
    needs: [b, c]
  - id: d
    tool: mark
    args: {name: d}
    needs: [slow, plain]
outputs:
  names: ${{ [steps.a.output, steps.b.output, steps.c.output, steps.slow.output, steps.plain.output, steps.d.output] }}
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds (checked every 10 ms), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)  # reaped (its pid no longer counts as a live owner), pipes closed


def _enough(effects: Path, target: int, process: subprocess.Popen[str]) -> Callable[[], bool]:
    return lambda: len(lines(effects)) >= target or process.poll() is not None


def test_kill_mid_run_then_resume_from_the_cli(tmp_path: Path) -> None:
    flow = tmp_path / "crash.yaml"
    flow.write_text(WORKFLOW, encoding="utf-8")
    effects, release, journal = tmp_path / "effects.txt", tmp_path / "release", tmp_path / "journal.sqlite3"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "STEPWEAVE_TEST_EFFECTS": str(effects),
        "STEPWEAVE_TEST_RELEASE": str(release),
    }
    tools = str(HERE / "crash_tools.py")
    run = subprocess.Popen(
        [*stepweave_command(), "run", str(flow), "--tools", tools, "--journal", str(journal), "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # `slow` and `plain` have started (their effects are there), so b and c were
        # committed before them.
        wait_for(
            lambda: (
                {"slow", "plain"} <= {line.split()[0] for line in lines(effects)} or run.poll() is not None
            ),
            "the slow steps to start",
        )
        assert run.poll() is None, run.communicate()
    finally:
        kill(run)
    assert not release.exists()
    before = collections.Counter(line.split()[0] for line in lines(effects))
    assert before == {"a": 1, "b": 1, "c": 1, "slow": 1, "plain": 1}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*stepweave_command(), *args, "--journal", str(journal)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,  # not a terminal: --retry-inflight ask cannot ask
        )

    listed = [json.loads(line) for line in cli("runs", "list", "--json").stdout.splitlines()]
    assert len(listed) == 1 and listed[0]["status"] == "interrupted"
    run_id = listed[0]["run_id"]
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "in flight when it stopped: slow, plain" in shown.stdout

    release.touch()
    # The tool modules are not imported from the journal: resume asks for them again.
    untold = cli("resume", run_id)
    assert untold.returncode == 2, untold.stderr
    assert f"--tools {tools}" in " ".join(untold.stderr.split())
    assert collections.Counter(line.split()[0] for line in lines(effects)) == before

    # `plain` is not idempotent: without a terminal to ask, it is not repeated, and the
    # resume says so and fails.
    refused = cli("resume", run_id, "--tools", tools)
    assert refused.returncode == 1, refused.stderr
    stderr = " ".join(refused.stderr.split())
    assert "step 'plain' (slow_plain) was running when the run stopped and is not idempotent" in stderr
    assert "--retry-inflight retry" in stderr
    assert collections.Counter(line.split()[0] for line in lines(effects)) == before

    resumed = cli("resume", run_id, "--tools", tools, "--retry-inflight", "retry", "--json")
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    after = collections.Counter(line.split()[0] for line in lines(effects))
    # Finished steps ran once; the in-flight idempotent one found its effect and skipped
    # it; the non-idempotent one was repeated, as asked.
    assert after == {"a": 1, "b": 1, "c": 1, "slow": 1, "plain": 2, "d": 1}
    keys = {line.split()[1] for line in lines(effects)}
    assert keys == {f"{run_id}/{step}" for step in ("a", "b", "c", "slow", "plain", "d")}
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    outputs = {"names": ["a", "b", "c", "slow", "plain", "d"]}
    assert events[-1] == {"event": "workflow_outputs", "outputs": outputs}
    resumed_event = next(e for e in events if e["event"] == "run_resumed")
    assert sorted(resumed_event["restored"]) == ["a", "b", "c"]
    assert sorted(resumed_event["retried"]) == ["plain", "slow"]
    record = json.loads(cli("runs", "list", "--json").stdout.splitlines()[0])
    assert (record["status"], record["tasks_done"], record["tasks_total"]) == ("succeeded", 6, 6)
    again = cli("resume", run_id, "--tools", tools)
    assert again.returncode == 1 and "already succeeded" in again.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_during_journal_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """Kill at random points of a stream of short runs; every time, the journal opens,
    every success it holds was committed before any dependent ran, and the interrupted
    run resumes without repeating a committed step.

    Where a kill lands is up to the scheduler of the machine: the child may race past the
    target to the end of a run and be killed between two runs, with nothing to resume.
    So the test does not assume it: it reads where the kill landed from the effects (a
    run with some but not all of its 120 effects was cut mid-run, and must then be the one
    interrupted run) and keeps killing until three kills have landed mid-run."""
    journal_path = new_journal(backend, tmp_path).backend.where  # a file, or a database URL
    rng = random.Random(20261126)
    child = HERE / "crash_child.py"
    resumed = 0
    for round_ in range(20):
        if resumed >= 3:
            break
        effects = tmp_path / f"effects-{round_}.txt"
        monkeypatch.setenv("STEPWEAVE_TEST_EFFECTS", str(effects))
        # Early in a run (of 0 to 4 finished runs before it): most kills then land mid-run.
        target = 120 * rng.randint(0, 4) + rng.randint(5, 40)
        process = subprocess.Popen(
            [sys.executable, str(child), str(journal_path), f"k{round_}"],
            cwd=ROOT,
            env={**os.environ, "STEPWEAVE_TEST_EFFECTS": str(effects)},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(_enough(effects, target, process), f"{target} effects")
            assert process.poll() is None, process.communicate()[1]
        finally:
            kill(process)

        journal = Journal(journal_path)
        records = [r for r in journal.runs() if r.run_id.startswith(f"k{round_}-")]
        ran = collections.Counter(line.split()[1] for line in lines(effects))
        for record in records:
            history = journal.load(record.run_id)  # always readable
            for task_id, result in history.results.items():
                key = f"{record.run_id}/{task_id}"
                if ran[key]:  # it ran, so each of its dependencies had been committed
                    for dep in history.graph[task_id].deps:
                        assert history.results[dep].status is TaskStatus.SUCCEEDED, (key, dep)
                if result.status is TaskStatus.SUCCEEDED:
                    assert ran[key] == 1
        interrupted = [r for r in records if r.status == "interrupted"]
        assert len(interrupted) <= 1
        # A run with some of its effects but not all was cut mid-run: it cannot have
        # finished, so it is the interrupted one.
        per_run = collections.Counter(key.split("/")[0] for key in ran)
        cut = [run_id for run_id, count in per_run.items() if count < 120]
        assert len(cut) <= 1, per_run
        if cut:
            assert [r.run_id for r in interrupted] == cut, (per_run, records)
        for record in interrupted:
            committed = {t for t, r in journal.load(record.run_id).results.items() if r.ok}
            orchestrator = Orchestrator(tools=[mark], journal=journal)
            outcome = _run(orchestrator.resume(record.run_id, retry_inflight="retry"))
            assert outcome.ok, outcome.error
            again = collections.Counter(line.split()[1] for line in lines(effects))
            for task_id in committed:
                assert again[f"{record.run_id}/{task_id}"] == 1, f"{task_id} ran again after its commit"
            assert len(outcome.outputs) == 120
            if cut:
                resumed += 1
    assert resumed >= 3, "fewer than 3 of 20 kills landed mid-run"


def _run(run: Run) -> RunResult:
    async def go() -> RunResult:
        async with run:
            return await run.wait()

    return asyncio.run(go())


def test_two_processes_write_one_journal_at_once(tmp_path: Path) -> None:
    """Two processes stream runs into one new journal file; each sees only its own runs,
    every finished run is whole, and neither blocks the other out."""
    journal_path = tmp_path / "journal.sqlite3"
    effects = {name: tmp_path / f"effects-{name}.txt" for name in ("left", "right")}
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(HERE / "crash_child.py"), str(journal_path), name],
            cwd=ROOT,
            env={**os.environ, "STEPWEAVE_TEST_EFFECTS": str(path)},
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in effects.items()
    }
    try:
        # Both have finished at least three whole runs (120 steps each).
        for name, path in effects.items():
            wait_for(_enough(path, 3 * 120 + 1, processes[name]), f"{name}'s runs")
            assert processes[name].poll() is None, processes[name].communicate()[1]
    finally:
        for process in processes.values():
            kill(process)
    journal = Journal(journal_path)
    records = journal.runs()
    for name, path in effects.items():
        mine = [r for r in records if r.run_id.startswith(f"{name}-")]
        finished = [r for r in mine if r.status == "succeeded"]
        assert len(finished) >= 3
        ran = collections.Counter(line.split()[1] for line in lines(path))
        for record in finished:
            history = journal.load(record.run_id)
            assert len(history.results) == 120 and all(r.ok for r in history.results.values())
            assert all(ran[f"{record.run_id}/{task_id}"] == 1 for task_id in history.results)
