"""The durability quick start, for real: examples/slow-steps.yaml killed halfway (SIGKILL),
resumed, listed and reported; the report draws the cut attempt, not the downtime."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from orchestrator import TaskStarted
from orchestrator.journal import Journal
from tests.e2e.test_cli import ROOT, stepweave_command

EXAMPLE = ROOT / "examples" / "slow-steps.yaml"


def run_cli(tmp_path: Path, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "HOME": str(tmp_path)}
    return subprocess.run(
        [*stepweave_command(), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def started(journal: Journal, task_id: str) -> str | None:
    """The run id once ``task_id`` has started in the journal, else None."""
    if not journal.exists():
        return None
    for record in journal.runs(limit=1):
        events = journal.load(record.run_id).events
        if any(isinstance(e, TaskStarted) and e.task_id == task_id for e in events):
            return record.run_id
    return None


def test_a_run_killed_halfway_resumes_and_reports_the_cut_attempt(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    where = ("--journal", str(path))
    command = [*stepweave_command(), "run", str(EXAMPLE), "--set", "seconds=1.5", *where]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = Journal(path)
    try:
        deadline = time.monotonic() + 45
        run_id = None
        while run_id is None and process.poll() is None and time.monotonic() < deadline:
            run_id = started(journal, "unpack")  # the second of four steps: halfway
            time.sleep(0.05)  # polling the journal another process writes
        assert run_id is not None, "the run never reached its second step"
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode != 0, "the example finished before it could be killed"

    resumed = run_cli(tmp_path, "resume", run_id, *where)
    assert resumed.returncode == 0, resumed.stderr
    shown = run_cli(tmp_path, "runs", "show", run_id, "--json", *where)
    assert shown.returncode == 0, shown.stderr
    result = json.loads(shown.stdout)["result"]
    assert result["status"] == "succeeded"
    assert result["tasks"]["download"]["attempts"] == 1  # finished before the kill: not run again
    assert result["tasks"]["unpack"]["attempts"] == 2  # cut by the kill, run again by the resume

    listed = run_cli(tmp_path, "runs", "list", *where, columns=40)
    assert any(run_id in line for line in listed.stdout.splitlines()), listed.stdout  # never wrapped

    report = tmp_path / "run.html"
    made = run_cli(tmp_path, "report", run_id, "-o", str(report), *where)
    assert made.returncode == 0, made.stderr
    html = report.read_text()
    assert "k-crash" in html and "cut short, the run stopped; resumed" in html
