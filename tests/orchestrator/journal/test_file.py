"""Bad journal files are refused with errors that name the file, never misread."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from orchestrator import (
    JournalCorrupt,
    JournalError,
    JournalVersionError,
    Orchestrator,
    RunNotFound,
    Task,
)
from orchestrator.journal import FORMAT_VERSION, Journal, default_path
from tools import tool


@tool
def one() -> int:
    return 1


async def journal_with_runs(path: Path, count: int = 3) -> Journal:
    journal = Journal(path)
    orchestrator = Orchestrator(tools=[one], journal=journal)
    for i in range(count):
        graph = [Task(id=f"s{k}", tool="one", deps=(f"s{k - 1}",) if k else ()) for k in range(20)]
        assert (await orchestrator.run(graph, run_id=f"run{i}")).ok
    return journal


def test_default_path_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPWEAVE_JOURNAL", str(tmp_path / "mine.sqlite3"))
    assert default_path() == tmp_path / "mine.sqlite3"
    assert Journal().path == tmp_path / "mine.sqlite3"
    monkeypatch.delenv("STEPWEAVE_JOURNAL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "stepweave" / "journal.sqlite3"


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(JournalCorrupt, match=f"{path}: damaged or not a journal"):
        Journal(path).runs()


def test_someone_elses_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(JournalCorrupt, match="not a stepweave journal"):
        Journal(path).runs()
    # Nor is it turned into one by a run.
    with pytest.raises(JournalCorrupt, match="not a stepweave journal"):
        Journal(path).check()


async def test_a_journal_of_another_format_version(tmp_path: Path) -> None:
    journal = await journal_with_runs(tmp_path / "j.sqlite3", count=1)
    with sqlite3.connect(journal.path) as conn:
        conn.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    with pytest.raises(JournalVersionError) as caught:
        journal.load("run0")
    message = str(caught.value)
    assert str(journal.path) in message
    assert f"version {FORMAT_VERSION + 1} was written by a newer stepweave" in message
    # A run must not start writing into it either.
    with pytest.raises(JournalVersionError):
        await Orchestrator(tools=[one], journal=journal).run([Task(id="x", tool="one")])


async def test_a_truncated_journal(tmp_path: Path) -> None:
    journal = await journal_with_runs(tmp_path / "j.sqlite3")
    size = journal.path.stat().st_size
    with journal.path.open("r+b") as file:
        file.truncate(size // 2)
    with pytest.raises(JournalError, match=str(journal.path)) as caught:
        for record in journal.runs():
            journal.load(record.run_id)
    assert isinstance(caught.value, JournalCorrupt)


async def test_a_corrupted_record_names_run_and_batch(tmp_path: Path) -> None:
    journal = await journal_with_runs(tmp_path / "j.sqlite3", count=1)
    with sqlite3.connect(journal.path) as conn:
        conn.execute("UPDATE batches SET data = '[[\"task_ended\", 1' WHERE run_id = 'run0' AND seq = 2")
    with pytest.raises(JournalCorrupt, match=r"run 'run0', batch 2 is unreadable"):
        journal.load("run0")


async def test_garbage_over_the_pages(tmp_path: Path) -> None:
    journal = await journal_with_runs(tmp_path / "j.sqlite3")
    data = bytearray(journal.path.read_bytes())
    for offset in range(4096, len(data), 4096):  # every page but the header's
        data[offset + 8 : offset + 64] = b"\xff" * 56
    journal.path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match=str(journal.path)):
        for record in journal.runs():
            journal.load(record.run_id)


def test_missing_journal_and_unknown_run(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal here"):
        Journal(tmp_path / "none.sqlite3").runs()
    journal = Journal(tmp_path / "j.sqlite3")
    journal.check()
    with pytest.raises(RunNotFound, match=r"no run with id 'abc' \(see `stepweave runs list`\)"):
        journal.load("abc")


async def test_prune_keeps_recent_runs(tmp_path: Path) -> None:
    journal = await journal_with_runs(tmp_path / "j.sqlite3")
    with sqlite3.connect(journal.path) as conn:
        conn.execute("UPDATE runs SET started_at = ? WHERE run_id = 'run0'", (time.time() - 40 * 86400,))
    assert journal.prune(older_than=30 * 86400) == ["run0"]
    assert sorted(r.run_id for r in journal.runs()) == ["run1", "run2"]
    with sqlite3.connect(journal.path) as conn:
        assert conn.execute("SELECT count(*) FROM batches WHERE run_id = 'run0'").fetchone()[0] == 0
    with pytest.raises(RunNotFound):
        journal.load("run0")


def test_a_new_journal_appears_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that finds the file while a writer is making it (`stepweave runs list` in
    another terminal, or a test polling a run it started) must see a journal, not an empty
    file it calls corrupt: the file is made under another name and linked into place."""
    from orchestrator.journal import schema

    path = tmp_path / "runs" / "journal.sqlite3"
    seen: list[bool] = []
    link = schema.os.link

    def watched_link(source: str | Path, target: str | Path) -> None:
        seen.append(Path(target).exists())  # the moment before the journal appears
        link(source, target)

    monkeypatch.setattr(schema.os, "link", watched_link)
    schema.connect(path).close()
    assert seen == [False]  # it did not exist, even as an empty file, until it was whole
    assert Journal(path).runs() == []  # read without creating: a journal with no runs
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith((".new", ".new-wal", ".new-shm"))]
    assert path.stat().st_mode & 0o777 == 0o600
