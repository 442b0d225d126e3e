"""What only the PostgreSQL journal has: schema migrations, passwords kept out of messages,
commits fenced by the run's owner, and a writer that rides out a server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator import JournalError, Orchestrator, RunStatus, Task, TaskGraph
from orchestrator.errors import JournalVersionError
from orchestrator.journal import Journal, pgschema
from orchestrator.journal.backend import redact_url, sqlite_path
from tools import ToolContext, tool

from .conftest import raw
from .pg_server import server
from .test_cli_runs import cli


@pytest.fixture
def pg_journal() -> Journal:
    return Journal(server().new_database())


def test_urls_pick_the_backend_and_hide_passwords(tmp_path: Path) -> None:
    assert Journal(f"sqlite:///{tmp_path}/j.sqlite3").path == tmp_path / "j.sqlite3"
    assert sqlite_path("sqlite:///rel/j.sqlite3") == Path("rel/j.sqlite3")
    with pytest.raises(ValueError, match="three slashes"):
        sqlite_path("sqlite://j.sqlite3")
    url = "postgresql://ops:s3cret-pw@db.example:5433/runs"
    assert redact_url(url) == "postgresql://ops:***@db.example:5433/runs"
    journal = Journal(url)
    assert journal.path is None and journal.where == redact_url(url)
    assert "s3cret-pw" not in repr(journal)


def test_an_unreachable_server_is_named_without_its_password() -> None:
    pg = server()
    # Nothing listens on this port: the error names the database, never the password.
    journal = Journal(f"postgresql://{pg.user}:hunter2-pw@127.0.0.1:1/nothere")
    with pytest.raises(JournalError) as caught:
        journal.runs()
    assert "127.0.0.1:1/nothere" in str(caught.value) and "hunter2-pw" not in str(caught.value)
    assert journal.exists()  # unreachable: the read that follows says why


def test_a_schema_from_a_newer_stepweave_is_refused(pg_journal: Journal) -> None:
    pg_journal.check()
    assert pg_journal.exists() and pg_journal.runs() == []
    with raw(pg_journal) as conn:
        conn.execute(
            "INSERT INTO stepweave_schema (version, applied_at) VALUES (?, 0)", (pgschema.SCHEMA_VERSION + 5,)
        )
    pgschema._ready.discard(pg_journal.where)  # a new process, as far as the check goes
    later = Journal(pg_journal.postgres.url if pg_journal.postgres else "")
    with pytest.raises(JournalVersionError, match=f"schema version {pgschema.SCHEMA_VERSION + 5}") as caught:
        later.runs()
    assert pg_journal.where in str(caught.value)


def test_an_empty_database_is_no_journal_until_a_run_writes_one(pg_journal: Journal) -> None:
    assert not pg_journal.exists()
    with pytest.raises(JournalError, match="no journal here"):
        pg_journal.runs()


async def test_a_run_taken_over_elsewhere_stops_writing(pg_journal: Journal) -> None:
    """Fencing: once another process owns the run, this one's commits are refused, so a
    step that waits for its start to be durable (not idempotent) never starts here."""
    ran: list[str] = []

    @tool
    def first(ctx: ToolContext) -> str:
        with raw(pg_journal) as conn:  # another worker takes the run over
            conn.execute("UPDATE runs SET owner = 'other-host:1' WHERE run_id = ?", (ctx.run_id,))
        ran.append(ctx.task_id)
        return "done"

    @tool(idempotent=False)
    def charge(ctx: ToolContext) -> str:
        ran.append(ctx.task_id)
        return "charged"

    graph = TaskGraph([Task(id="a", tool="first"), Task(id="pay", tool="charge", deps=("a",))])
    result = await Orchestrator(tools=[first, charge], journal=pg_journal).run(graph, run_id="fenced")
    assert result.status is RunStatus.FAILED
    assert result.error is not None and "no longer this process's" in result.error
    assert ran == ["a"]
    assert pg_journal.load("fenced").record.owner == "other-host:1"


async def test_the_writer_rides_out_a_server_restart(pg_journal: Journal) -> None:
    pg = server()
    restarted = asyncio.Event()

    @tool
    async def before() -> int:
        # The server goes away and comes back while this step runs: its end, and
        # everything after, must still be committed.
        await asyncio.to_thread(pg.restart, 0.3)
        restarted.set()
        return 1

    @tool
    def after(n: int) -> int:
        return n + 1

    graph = TaskGraph(
        [
            Task(id="x", tool="before"),
            Task(id="y", tool="after", args={"n": "${{ steps.x.output }}"}, deps=("x",)),
        ]
    )
    result = await Orchestrator(tools=[before, after], journal=pg_journal).run(graph, run_id="bounce")
    assert restarted.is_set()
    assert result.ok, result.error
    history = pg_journal.load("bounce")
    assert history.record.status == "succeeded"
    assert {tid: r.output for tid, r in history.results.items()} == {"x": 1, "y": 2}


def test_the_cli_names_an_unreachable_journal_in_one_line(tmp_path: Path) -> None:
    url = "postgresql://ops:hunter2-pw@127.0.0.1:1/team"
    listed = cli(tmp_path, "runs", "list", "--journal", url)
    assert listed.returncode == 1, listed.stderr
    message = " ".join(listed.stderr.split())
    assert "postgresql://ops:***@127.0.0.1:1/team" in message and "cannot connect" in message
    assert "hunter2-pw" not in listed.stderr + listed.stdout and "Traceback" not in listed.stderr
