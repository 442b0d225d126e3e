"""Who may read and change the journal (security review, finding 16): files are the
user's alone, a journal others can write is reported, and ``resume`` never imports code
named in the journal."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.journal.schema import connect, warn_if_exposed
from tests.e2e.test_cli import stepweave_command


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_journal_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "made" / "by" / "us" / "journal.sqlite3"
    old_umask = os.umask(0o022)  # the usual umask: SQLite alone would make 0644 files
    try:
        conn = connect(path)
    finally:
        os.umask(old_umask)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO runs (run_id, status, started_at) VALUES ('r', 'running', 1)")
        conn.execute("COMMIT")
        files = {p.name: mode(p) for p in path.parent.iterdir()}
    finally:
        conn.close()
    assert files == {"journal.sqlite3": 0o600, "journal.sqlite3-wal": 0o600, "journal.sqlite3-shm": 0o600}
    assert mode(path.parent) == 0o700  # the directory we created for it


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    connect(shared / "journal.sqlite3").close()
    assert mode(shared) == 0o755 and mode(shared / "journal.sqlite3") == 0o600


def test_a_journal_others_can_write_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "open" / "journal.sqlite3"
    connect(path).close()
    assert warn_if_exposed(path) == []
    path.chmod(0o666)
    path.parent.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="stepweave.journal"):
        connect(path, create=False).close()
        connect(path, create=False).close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "stepweave.journal"]
    assert len(warnings) == 1, warnings
    assert f"the file {path} is writable by every user" in warnings[0]
    assert f"the directory {path.parent} is writable by every user" in warnings[0]
    assert "stepweave resume" in warnings[0]


# -- resume and the tool modules recorded in the journal ----------------------------------

GOOD_TOOLS = """\
from tools import tool


@tool
def shout(word: str) -> str:
    return word.upper()
"""

# Importing this module is the attack: it leaves a marker file behind.
EVIL_TOOLS = """\
from pathlib import Path

Path({marker!r}).write_text("imported")
"""

FLOW = """\
name: tampered
steps:
  - id: first
    tool: shout
    args: {word: hi}
  - id: second
    tool: shell
    needs: [first]
    args: {argv: [sh, -c, "exit 3"], check: true}
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*stepweave_command(), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={
            "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin",
            "COLUMNS": "200",
            "HOME": str(tmp_path),
        },
    )


def test_resume_does_not_import_tool_paths_from_the_journal(tmp_path: Path) -> None:
    good, evil, marker = tmp_path / "good_tools.py", tmp_path / "evil_tools.py", tmp_path / "TAMPER_RCE"
    good.write_text(GOOD_TOOLS)
    evil.write_text(EVIL_TOOLS.format(marker=str(marker)))
    flow, journal = tmp_path / "flow.yaml", tmp_path / "journal.sqlite3"
    flow.write_text(FLOW)
    first = cli(tmp_path, "run", str(flow), "--tools", str(good), "--journal", str(journal), "--json")
    assert first.returncode == 1, first.stderr  # `second` fails: the run can be resumed
    run_id = json.loads(first.stdout.splitlines()[0])["run_id"]

    # Someone who can write the journal points its tool modules at their own code.
    with sqlite3.connect(journal) as conn:
        (meta_text,) = conn.execute("SELECT meta FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        meta = json.loads(meta_text)
        assert meta["tools"] == [str(good)]
        meta["tools"] = [str(evil)]
        conn.execute("UPDATE runs SET meta = ? WHERE run_id = ?", (json.dumps(meta), run_id))

    refused = cli(tmp_path, "resume", run_id, "--journal", str(journal))
    assert not marker.exists(), "resume imported a module named in the journal"
    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr
    assert "code paths are not taken from the journal" in message
    assert f"stepweave resume {run_id} --tools {evil}" in message  # what the journal says, to check

    # Named again on the command line, the user's own modules are used, not the journal's.
    resumed = cli(tmp_path, "resume", run_id, "--journal", str(journal), "--tools", str(good), "--json")
    assert not marker.exists()
    events = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
    restored = next(e for e in events if e["event"] == "run_resumed")["restored"]
    assert restored == ["first"]  # `first` kept its output; `second` ran (and failed) again
    assert resumed.returncode == 1 and "step 'second' failed" in resumed.stderr
