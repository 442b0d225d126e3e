"""The SQLite backend: every run in one file on this machine (the default journal).

The file, its format check and its permissions are ``schema``'s; this module holds the
statements that store and read runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import JournalCorrupt, JournalError, ResumeError
from .backend import RunEnd, RunRows, RunStart, owner_alive
from .codec import Blob
from .schema import Durability, connect

__all__ = ["SQLiteBackend", "SQLiteWriter"]

RUN_COLUMNS = "run_id, name, status, started_at, ended_at, tasks_total, tasks_done, error, owner, meta"


class SQLiteBackend:
    """Runs in the SQLite file at ``path`` (WAL mode: readers never block the writer)."""

    def __init__(self, path: Path, durability: Durability = "process") -> None:
        self.path = path
        self.durability: Durability = durability
        self.where = str(path)
        self.key = str(path)

    def exists(self) -> bool:
        return self.path.exists()

    def check(self) -> None:
        connect(self.path, durability=self.durability).close()

    def writer(self) -> SQLiteWriter:
        return SQLiteWriter(self.path, connect(self.path, durability=self.durability))

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path, create=False)
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            raise JournalCorrupt(f"{self.path}: damaged journal: {exc}") from None
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: {exc}") from None
        finally:
            conn.close()

    def _alive(self, row: Sequence[Any]) -> bool:
        return owner_alive(self.key, row[0], row[8])

    def list_rows(self, limit: int | None) -> list[tuple[tuple[Any, ...], bool]]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC"
        with self._reading() as conn:
            rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
            return [(tuple(row), self._alive(row)) for row in rows]

    def read(self, run_id: str) -> RunRows | None:
        with self._reading() as conn:
            row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            batches = conn.execute(
                "SELECT seq, data FROM batches WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
            blobs = conn.execute("SELECT digest, data FROM blobs WHERE run_id = ?", (run_id,)).fetchall()
            return RunRows(tuple(row), self._alive(row), batches, {d: bytes(b) for d, b in blobs})

    def prune(self, cutoff: float) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute("SELECT run_id, owner FROM runs WHERE started_at < ?", (cutoff,)).fetchall()
            doomed = [run_id for run_id, owner in rows if not owner_alive(self.key, run_id, owner)]
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in ("batches", "blobs", "runs"):
                    conn.executemany(f"DELETE FROM {table} WHERE run_id = ?", [(r,) for r in doomed])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return doomed


class SQLiteWriter:
    """One run's connection to the file, used by its writer thread only."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    def register(self, start: RunStart) -> None:
        conn = self._conn
        with self._transaction():
            exists = conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (start.run_id,)).fetchone()
            if exists:
                raise JournalError(
                    f"{self.path}: a run with id {start.run_id!r} is already journaled "
                    "(resume it with `stepweave resume`, or pick another id)"
                )
            conn.execute(
                "INSERT INTO runs (run_id, name, status, started_at, tasks_total, owner, meta) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    start.run_id,
                    start.name,
                    "running" if start.owner else "queued",
                    start.started_at,
                    start.tasks_total,
                    start.owner,
                    start.meta,
                ),
            )
            # The graph goes in with the run, in the same transaction: a run in the journal
            # always has the graph it needs to be resumed.
            conn.execute(
                "INSERT INTO batches (run_id, seq, data) VALUES (?, 1, ?)", (start.run_id, start.graph_batch)
            )

    def claim(self, run_id: str, previous_owner: str | None) -> int:
        from .backend import owner_id

        conn = self._conn
        with self._transaction():
            # Compare-and-set on the owner: of two processes resuming the same run at once,
            # exactly one wins.
            cursor = conn.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, owner = ? "
                "WHERE run_id = ? AND owner IS ?",
                (owner_id(), run_id, previous_owner),
            )
            if cursor.rowcount != 1:
                raise ResumeError(
                    f"{self.path}: run {run_id!r} is being resumed by another process right now"
                )
            row = conn.execute("SELECT max(seq) FROM batches WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0] or 0)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def append(
        self,
        run_id: str,
        seq: int,
        batch: str,
        blobs: Sequence[Blob],
        done: int,
        added: int,
        end: RunEnd | None,
    ) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if blobs:
                conn.executemany(
                    "INSERT OR IGNORE INTO blobs (run_id, digest, data) VALUES (?, ?, ?)",
                    [(run_id, digest, raw) for digest, raw in blobs],
                )
            conn.execute("INSERT INTO batches (run_id, seq, data) VALUES (?, ?, ?)", (run_id, seq, batch))
            if end is not None:
                conn.execute(
                    "UPDATE runs SET status = ?, ended_at = ?, error = ?, tasks_total = ?, "
                    "tasks_done = ?, owner = NULL WHERE run_id = ?",
                    (end.status, end.ended_at, end.error, end.tasks_total, end.tasks_done, run_id),
                )
            elif done or added:
                conn.execute(
                    "UPDATE runs SET tasks_done = tasks_done + ?, tasks_total = tasks_total + ? "
                    "WHERE run_id = ?",
                    (done, added, run_id),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._conn.close()
