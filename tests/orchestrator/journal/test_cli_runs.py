"""``stepweave runs list|show|prune``, ``report`` and ``resume`` errors, in subprocesses."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from orchestrator import Orchestrator, Task
from orchestrator.journal import FORMAT_VERSION, Journal
from tests.e2e.test_cli import stepweave_command
from tools import tool

from .conftest import BACKENDS, new_journal, raw


@tool
def shout(word: str) -> str:
    return word.upper()


@tool
def broken() -> str:
    raise RuntimeError("the disk is full")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*stepweave_command(), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)},
    )


@pytest.fixture(params=BACKENDS)
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    journal = new_journal(request.param, tmp_path)
    orchestrator = Orchestrator(tools=[shout, broken], journal=journal)
    good = [
        Task(id="hello", tool="shout", args={"word": "hi"}),
        Task(id="bye", tool="shout", args={"word": "by"}),
    ]
    bad = [Task(id="fine", tool="shout", args={"word": "ok"}), Task(id="oops", tool="broken", deps=("fine",))]

    async def runs() -> None:
        await orchestrator.run(good, run_id="good1")
        await orchestrator.run(bad, run_id="bad1")
        await orchestrator.run(good, run_id="old1")

    asyncio.run(runs())
    with raw(journal) as conn:
        conn.execute("UPDATE runs SET started_at = ? WHERE run_id = 'old1'", (time.time() - 40 * 86400,))
    return journal


def test_list_show_and_report(tmp_path: Path, journal: Journal) -> None:
    where = ("--journal", journal.where)
    listed = cli(tmp_path, "runs", "list", "--json", *where)
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["run_id"], r["status"], r["tasks_done"], r["tasks_total"]) for r in records] == [
        ("bad1", "failed", 1, 2),
        ("good1", "succeeded", 2, 2),
        ("old1", "succeeded", 2, 2),
    ]
    table = cli(tmp_path, "runs", "list", *where)
    assert "bad1" in table.stdout and "1/2" in table.stdout

    shown = cli(tmp_path, "runs", "show", "bad1", *where)
    assert shown.returncode == 0, shown.stderr
    assert "run bad1 (unnamed): failed" in shown.stdout
    assert "RuntimeError: the disk is full" in shown.stdout

    report = cli(tmp_path, "report", "bad1", "-o", str(tmp_path / "bad1.html"), *where)
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "bad1.html").read_text()
    assert "oops" in html and "the disk is full" in html


def test_prune_and_unknown_runs(tmp_path: Path, journal: Journal) -> None:
    where = ("--journal", journal.where)
    pruned = cli(tmp_path, "runs", "prune", "--older-than", "30d", *where)
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 1 run(s) older than 30d" in pruned.stdout
    assert sorted(r.run_id for r in journal.runs()) == ["bad1", "good1"]
    bad_age = cli(tmp_path, "runs", "prune", "--older-than", "soon", *where)
    assert bad_age.returncode == 2 and "not a duration like 30d" in bad_age.stderr

    missing = cli(tmp_path, "runs", "show", "old1", *where)
    assert missing.returncode == 1
    assert f"{journal.where}: no run with id 'old1'" in missing.stderr.replace("\n", "")
    again = cli(tmp_path, "resume", "good1", *where)
    assert again.returncode == 1 and "already succeeded: there is nothing to resume" in again.stderr


@pytest.mark.parametrize("journal", ["sqlite"], indirect=True)  # test_postgres.py: the server's
def test_bad_journals_fail_in_one_line(tmp_path: Path, journal: Journal) -> None:
    assert journal.path is not None
    with sqlite3.connect(journal.path) as conn:
        conn.execute(f"PRAGMA user_version = {FORMAT_VERSION + 7}")
    newer = cli(tmp_path, "resume", "bad1", "--journal", str(journal.path))
    assert newer.returncode == 1
    message = newer.stderr.replace("\n", "")
    assert str(journal.path) in message and f"journal format version {FORMAT_VERSION + 7}" in message

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\x00\x01 not sqlite " * 500)
    listed = cli(tmp_path, "runs", "list", "--journal", str(garbage))
    assert listed.returncode == 1 and "damaged or not a journal" in listed.stderr
    nothing = cli(tmp_path, "runs", "list", "--journal", str(tmp_path / "none.sqlite3"))
    assert nothing.returncode == 1 and "no journal yet" in nothing.stderr
