"""The journal file: where it lives, its tables, and the format version check.

One SQLite file in WAL mode holds every run: readers (``stepweave runs list``) never block
the writer, and several processes may write their runs to the same file at once (SQLite
serialises the short write transactions; ``busy_timeout`` waits instead of failing).

The format is versioned with ``PRAGMA user_version``; a file with another version is
rejected with ``JournalVersionError``, never read with the wrong meaning. The
``application_id`` marks the file as ours, so a stray SQLite database is refused too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Literal

from ..errors import JournalCorrupt, JournalError, JournalVersionError

__all__ = [
    "APPLICATION_ID",
    "FORMAT_VERSION",
    "Durability",
    "connect",
    "default_path",
    "warn_if_exposed",
]

_log = logging.getLogger("stepweave.journal")

#: Bumped on any change to the tables below; older and newer files are refused.
FORMAT_VERSION = 1
#: "SWJ1" as a big-endian int: identifies a stepweave journal among SQLite files.
APPLICATION_ID = 0x53574A31
ENV_VAR = "STEPWEAVE_JOURNAL"

#: ``process``: a commit survives the process being killed (SQLite ``synchronous=NORMAL``
#: in WAL mode); ``power``: it also survives an OS crash or power loss (``FULL``, slower).
Durability = Literal["process", "power"]

_SCHEMA = """
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    name        TEXT,
    status      TEXT NOT NULL,          -- running | succeeded | failed | cancelled
    started_at  REAL NOT NULL,
    ended_at    REAL,
    tasks_total INTEGER NOT NULL DEFAULT 0,
    tasks_done  INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    owner       TEXT,                   -- host:pid of the process running it now
    meta        TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE batches (                  -- one row per group commit
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,                -- 1, 2, ... within the run
    data   TEXT NOT NULL,                   -- JSON array of the batch's event records
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE blobs (                    -- large outputs, stored once per run
    run_id TEXT NOT NULL,
    digest TEXT NOT NULL,               -- sha256 of data
    data   BLOB NOT NULL,
    PRIMARY KEY (run_id, digest)
) WITHOUT ROWID;
CREATE INDEX runs_by_start ON runs (started_at);
"""


def default_path() -> Path:
    """``$STEPWEAVE_JOURNAL``, else ``journal.sqlite3`` in the user's data directory."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("stepweave", appauthor=False)) / "journal.sqlite3"


def connect(path: Path, *, create: bool = True, durability: Durability = "process") -> sqlite3.Connection:
    """Open (and with ``create``, initialise) the journal at ``path``, checking its format.

    Raises ``JournalError`` if it does not exist (and ``create`` is false),
    ``JournalCorrupt`` if it is not a journal or is damaged, ``JournalVersionError`` if it
    has another format version.
    """
    if not create and not path.exists():
        raise JournalError(f"{path}: no journal here (runs are journaled by `stepweave run`)")
    if create:
        _create_private(path)
    warn_if_exposed(path)
    try:
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE in the writer), so
        # the sqlite3 module never opens one behind our back.
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot open the journal: {exc}") from None
    try:
        _prepare(conn, path, create=create, durability=durability)
    except BaseException:
        conn.close()
        raise
    return conn


def _create_private(path: Path) -> None:
    """Create the journal's directory (0700) and the file itself (0600) if they are missing.

    The journal holds every input and output of every run, so other users must not read
    it; and what it holds decides what ``resume`` runs, so they must not write it. SQLite
    gives its ``-wal`` and ``-shm`` files the database file's mode, which is why creating
    the file ourselves, before SQLite does with 0644, covers all three.

    A new journal appears whole: it is made and initialised under a temporary name, then
    linked into place. A reader that looks while it is being made (``stepweave runs list``
    in another terminal) sees no journal yet, never an empty file it would call corrupt.
    """
    try:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal's directory: {exc}") from None
    if path.exists():
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.new")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(temporary, timeout=30.0, isolation_level=None)
        try:
            _initialise(conn)
            conn.execute("PRAGMA journal_mode = WAL")  # kept in the file's header
        finally:
            conn.close()  # the last connection: SQLite folds the -wal file back in
        try:
            os.link(temporary, path)  # fails if another process made the journal first
        except FileExistsError:
            pass  # theirs is as good as ours: keep it
        except OSError:
            # No hard links here (some network file systems): create in place, as before.
            _create_in_place(path)
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: cannot create the journal: {exc}") from None
    except OSError as exc:
        raise JournalError(f"{path}: cannot create the journal: {exc}") from None
    finally:
        for leftover in (temporary, *(temporary.with_name(temporary.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)


def _create_in_place(path: Path) -> None:
    """The empty file, 0600; SQLite initialises it when it is first opened for writing."""
    with contextlib.suppress(FileExistsError):  # another process just created it: keep it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


_warned: set[Path] = set()


def warn_if_exposed(path: Path) -> list[str]:
    """Warn (once per file and process) if other users can change the journal.

    Anyone who can write the journal, its ``-wal`` file, or the directory holding them
    (and so replace them) can change what a ``resume`` runs. Checked: world-writable
    modes and an owner other than the current user (or root). Group-writable is not
    flagged: with per-user groups (umask 002) it is the norm and harmless. Returns the
    reasons (empty when all is well).
    """
    reasons: list[str] = []
    me = os.geteuid() if hasattr(os, "geteuid") else None
    for item in (path.parent, path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = item.stat()
        except OSError:
            continue
        kind = "directory" if stat.S_ISDIR(info.st_mode) else "file"
        if info.st_mode & stat.S_IWOTH:
            reasons.append(
                f"the {kind} {item} is writable by every user (mode {stat.filemode(info.st_mode)})"
            )
        elif me is not None and info.st_uid not in (me, 0):
            reasons.append(f"the {kind} {item} belongs to another user (uid {info.st_uid})")
    key = path.resolve() if path.parent.exists() else path
    if reasons and key not in _warned:
        _warned.add(key)
        _log.warning(
            "warning: %s: %s; whoever can change the journal can change what `stepweave resume` "
            "runs: keep it in a directory only you can write (chmod 700 DIR; chmod 600 the journal)",
            path,
            "; ".join(reasons),
        )
    return reasons


def _prepare(conn: sqlite3.Connection, path: Path, *, create: bool, durability: Durability) -> None:
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        app_id, version = _identity(conn)
        if app_id == 0 and version == 0 and create:
            _initialise(conn)
            app_id, version = _identity(conn)
        if app_id != APPLICATION_ID:
            raise JournalCorrupt(f"{path}: not a stepweave journal (a SQLite file with other contents)")
        if version != FORMAT_VERSION:
            newer = "a newer" if version > FORMAT_VERSION else "an older"
            raise JournalVersionError(
                f"{path}: journal format version {version} was written by {newer} stepweave; "
                f"this one reads version {FORMAT_VERSION} only (use a new --journal file)"
            )
        _use_wal(conn, path)
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'power' else 'NORMAL'}")
    except sqlite3.DatabaseError as exc:
        raise JournalCorrupt(f"{path}: damaged or not a journal: {exc}") from None
    except sqlite3.Error as exc:
        raise JournalError(f"{path}: {exc}") from None


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch a new file to WAL mode (it stays in the file), once, whoever gets there first."""
    for _ in range(200):
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            # Switching needs the file to itself for a moment, and the busy handler does
            # not wait for that: another process opening the same new file holds it.
            if "locked" not in str(exc):
                raise
            time.sleep(0.01)
    raise JournalError(f"{path}: could not switch the journal to WAL mode: the file stays locked")


def _identity(conn: sqlite3.Connection) -> tuple[int, int]:
    # Both in one read transaction: another process may be creating the file right now,
    # and reading its id before and its version after that would look like a foreign file.
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        if own:
            conn.execute("COMMIT")
    return int(app_id), int(version)


def _initialise(conn: sqlite3.Connection) -> None:
    # Exclusive: two processes creating the same new file must not both create tables.
    conn.execute("BEGIN EXCLUSIVE")
    try:
        app_id, _ = _identity(conn)
        if app_id == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                conn.execute("ROLLBACK")
                return  # someone else's database: the caller reports it
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
