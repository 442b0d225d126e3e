"""``stepweave submit`` and ``stepweave worker`` on a real PostgreSQL, in real processes.

Each step's side effect is keyed by its idempotency key in a file, and every call is
logged apart from it, so the tests can tell "ran twice" from "did its effect twice":
a worker killed with ``kill -9`` mid-run, another finishing the run; workers racing for
runs; the database restarted under a running worker.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.journal import Journal
from planners import load_workflow
from tests.e2e.test_cli import stepweave_command
from tests.orchestrator.journal.pg_server import PgServer, server
from tests.orchestrator.journal.test_crash import lines, wait_for

TOOLS = """\
import asyncio, os
from pathlib import Path
from tools import ToolContext, tool


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:  # one short O_APPEND write: no interleaving
        file.write(line + "\\n")


@tool(idempotent=True)
async def step(ctx: ToolContext, name: str, hold: bool = False) -> str:
    _append(os.environ["CALLS"], f"{name} {ctx.idempotency_key} {os.getpid()}")
    effect = f"{name} {ctx.idempotency_key}"
    done = Path(os.environ["EFFECTS"]).read_text().splitlines() if Path(os.environ["EFFECTS"]).exists() else []
    if effect not in done:  # the effect is keyed: a repeat with the same key finds it done
        _append(os.environ["EFFECTS"], effect)
    release = Path(os.environ["RELEASE"])
    for _ in range(600 if hold else 0):  # bounded: a test that never releases must not hang
        if release.exists():
            break
        await asyncio.sleep(0.02)
    return name
"""

PLAIN_TOOL = '''

@tool(idempotent=False)
async def charge(ctx: ToolContext, name: str) -> str:
    """Not idempotent: a repeat would charge twice. Marked so, its start is committed
    before it runs; unmarked, a kill within the next group commit could lose the start."""
    _append(os.environ["CALLS"], f"{name} {ctx.idempotency_key} {os.getpid()}")
    release = Path(os.environ["RELEASE"])
    for _ in range(600):
        if release.exists():
            break
        await asyncio.sleep(0.02)
    return name
'''

PLAIN_FLOW = """\
name: charged
steps:
  - id: pay
    tool: charge
    args: {name: pay}
"""

FLOW = """\
name: queued
inputs:
  tag: {type: string, default: t}
steps:
  - id: a
    tool: step
    args: {name: "a-${{ inputs.tag }}"}
  - id: gate
    tool: step
    args: {name: "gate-${{ inputs.tag }}", hold: true}
    needs: a
  - id: b
    tool: step
    args: {name: "b-${{ inputs.tag }}"}
    needs: gate
"""


class Team:
    """A PostgreSQL journal, the tool module and flow, and the processes of one test."""

    def __init__(self, tmp_path: Path, pg: PgServer) -> None:
        self.pg = pg
        self.url = pg.new_database()
        self.tmp = tmp_path
        (tmp_path / "queue_tools.py").write_text(TOOLS + PLAIN_TOOL)
        (tmp_path / "plain.yaml").write_text(PLAIN_FLOW)
        (tmp_path / "flow.yaml").write_text(FLOW)
        self.calls, self.effects, self.release = (
            tmp_path / "calls",
            tmp_path / "effects",
            tmp_path / "release",
        )
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "COLUMNS": "200",
            "CALLS": str(self.calls),
            "EFFECTS": str(self.effects),
            "RELEASE": str(self.release),
        }
        self.workers: list[subprocess.Popen[str]] = []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*stepweave_command(), *args, "--journal", self.url],
            cwd=self.tmp,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def submit(self, tag: str = "t", flow: str = "flow.yaml") -> str:
        sets = ("--set", f"tag={tag}") if flow == "flow.yaml" else ()
        done = self.cli("submit", flow, "--tools", "queue_tools.py", *sets, "--json")
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)["run_id"])

    def worker(self, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*stepweave_command(), "worker", "--journal", self.url, "--tools", "queue_tools.py", *args],
            cwd=self.tmp,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.workers.append(process)
        return process

    def status(self, run_id: str) -> str:
        return Journal(self.url).load(run_id).record.status

    def callers(self, name: str) -> list[str]:
        """The pids that called step ``name``, in order."""
        return [line.split()[2] for line in lines(self.calls) if line.split()[0] == name]

    def close(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    made = Team(tmp_path, server())
    yield made
    made.close()


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then the worker's log once it has exited."""
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    return stderr


def test_kill_9_mid_run_another_worker_finishes_it(team: Team) -> None:
    run_id = team.submit()
    first = team.worker("--lease", "1s")
    wait_for(
        lambda: bool(team.callers("gate-t")) or first.poll() is not None, "the first worker to reach the gate"
    )
    first.kill()  # kill -9: no hand-back, the lease just stops being renewed
    first.communicate(timeout=10)
    assert team.status(run_id) in ("running", "interrupted")

    team.release.touch()
    second = team.worker("--lease", "1s")
    wait_for(lambda: team.status(run_id) == "succeeded", "the second worker to finish the run")
    stop(second)

    calls = collections.Counter(line.split()[0] for line in lines(team.calls))
    # `a` finished under the first worker and is not repeated; the in-flight gate (idempotent)
    # is re-dispatched with the same key; `b` runs once, under the second worker.
    assert calls == {"a-t": 1, "gate-t": 2, "b-t": 1}
    assert team.callers("gate-t")[0] == str(first.pid) and team.callers("b-t") == [str(second.pid)]
    assert len({line.split()[1] for line in lines(team.calls) if line.startswith("gate-t ")}) == 1
    effects = collections.Counter(lines(team.effects))
    assert set(effects.values()) == {1} and len(effects) == 3  # each side effect exactly once

    shown = team.cli("runs", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "succeeded"


def test_a_non_idempotent_step_in_flight_is_not_repeated_by_default(team: Team) -> None:
    run_id = team.submit(flow="plain.yaml")
    first = team.worker("--lease", "1s")
    wait_for(
        lambda: bool(team.callers("pay")) or first.poll() is not None, "the first worker to start paying"
    )
    first.kill()
    first.communicate(timeout=10)
    team.release.touch()
    second = team.worker("--lease", "1s")
    wait_for(lambda: team.status(run_id) == "failed", "the second worker to fail the run")
    log = stop(second)
    assert team.callers("pay") == [str(first.pid)], log  # its effect is unknown: never repeated
    shown = json.loads(team.cli("runs", "show", run_id, "--json").stdout)
    error = shown["result"]["tasks"]["pay"]["error"]
    assert "not marked idempotent" in json.dumps(error) and "--retry-inflight retry" in json.dumps(error)


def test_workers_racing_never_run_a_task_twice(team: Team) -> None:
    team.release.touch()
    # Submitted in-process (the CLI's submit is the same call, tested above): a burst.
    workflow = load_workflow(team.tmp / "flow.yaml")
    journal = Journal(team.url)
    run_ids = [journal.submit(workflow.to_graph(), inputs={"tag": f"r{i}"}) for i in range(4)]
    left, right = team.worker("--concurrency", "2"), team.worker("--concurrency", "2")
    for run_id in run_ids:
        wait_for(lambda run_id=run_id: team.status(run_id) == "succeeded", f"run {run_id} to succeed")
    logs = stop(left) + stop(right)
    calls = collections.Counter(line.split()[0] for line in lines(team.calls))
    assert calls == {f"{step}-r{i}": 1 for i in range(4) for step in ("a", "gate", "b")}
    # Each run was claimed by exactly one worker.
    claimed = [line for line in logs.splitlines() if ": claimed," in line]
    assert sorted(line.split("run ")[1].split()[0] for line in claimed) == sorted(run_ids)


def test_submit_wait_and_sigterm_hands_back(team: Team) -> None:
    run_id = team.submit()
    worker = team.worker("--grace", "0s")
    wait_for(lambda: bool(team.callers("gate-t")), "the worker to reach the gate")
    log = stop(worker)
    assert f"run {run_id}: handed back to the queue" in log and worker.returncode == 0
    assert team.status(run_id) == "queued"

    team.release.touch()
    team.worker()
    waited = team.cli(
        "submit", "flow.yaml", "--tools", "queue_tools.py", "--set", "tag=w", "--wait", "--json"
    )
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "succeeded"
    wait_for(lambda: team.status(run_id) == "succeeded", "the handed-back run to succeed")
    calls = collections.Counter(line.split()[0] for line in lines(team.calls))
    assert calls == {"a-t": 1, "gate-t": 2, "b-t": 1, "a-w": 1, "gate-w": 1, "b-w": 1}


def test_postgres_restarted_mid_run(team: Team) -> None:
    run_id = team.submit()
    worker = team.worker("--lease", "20s")
    wait_for(lambda: bool(team.callers("gate-t")), "the worker to reach the gate")
    team.pg.restart(down_for=0.5)  # the worker's connections are cut; it must ride this out
    team.release.touch()
    wait_for(lambda: team.status(run_id) == "succeeded", "the run to finish after the restart")
    stop(worker)
    calls = collections.Counter(line.split()[0] for line in lines(team.calls))
    assert calls == {"a-t": 1, "gate-t": 1, "b-t": 1}
    history = Journal(team.url).load(run_id)
    assert {tid: r.output for tid, r in history.results.items()} == {"a": "a-t", "gate": "gate-t", "b": "b-t"}


def test_submit_needs_postgres(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [*stepweave_command(), "worker", "--journal", str(tmp_path / "j.sqlite3")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "needs a PostgreSQL journal" in done.stderr
    assert not os.path.exists(tmp_path / "j.sqlite3")
