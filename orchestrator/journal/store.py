"""``Journal``: the handle users pass around — a path plus the operations on the file."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import JournalCorrupt, JournalError
from ..graph import TaskGraph
from .reader import RunHistory, RunRecord, list_runs, load_run
from .schema import Durability, connect, default_path
from .writer import ACTIVE, RunRecorder, owner_id

__all__ = ["Journal"]


class Journal:
    """The durable record of runs: one SQLite file (WAL mode) shared by every run.

    ``Journal()`` uses ``$STEPWEAVE_JOURNAL`` or the user's data directory. Pass it to
    ``Orchestrator(journal=...)`` to record runs and to resume them.

    Args:
        path: the journal file (created on first use).
        durability: ``"process"`` — a committed event survives the process being killed
            (the default); ``"power"`` — it also survives an OS crash (fsync per commit).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, durability: Durability = "process"
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', got {durability!r}")
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.durability: Durability = durability

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

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

    def runs(self, *, limit: int | None = None) -> list[RunRecord]:
        """Runs in the journal, newest first."""
        with self._reading() as conn:
            return list_runs(conn, self._is_alive, limit=limit)

    def load(self, run_id: str) -> RunHistory:
        """One run rebuilt from its events (``RunNotFound`` if there is no such run)."""
        with self._reading() as conn:
            return load_run(conn, self.path, run_id, self._is_alive)

    def prune(self, *, older_than: float, now: float | None = None) -> list[str]:
        """Delete runs that started more than ``older_than`` seconds ago and are not live.

        Returns the deleted run ids; their events and stored outputs go with them.
        """
        cutoff = (now if now is not None else time.time()) - older_than
        with self._reading() as conn:
            rows = conn.execute("SELECT run_id, owner FROM runs WHERE started_at < ?", (cutoff,)).fetchall()
            doomed = [run_id for run_id, owner in rows if not self._is_alive(run_id, owner)]
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

    def recorder(
        self,
        run_id: str,
        graph: TaskGraph,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> RunRecorder:
        """A recorder for a new run of ``graph`` (started by the ``Run`` that uses it)."""
        return RunRecorder(self.path, run_id, graph=graph, meta=meta, durability=self.durability)

    def check(self) -> None:
        """Open the file (creating it if missing) and check its format; raise if unusable."""
        connect(self.path, durability=self.durability).close()

    def _is_alive(self, run_id: str, owner: str | None) -> bool:
        """Whether the process that owns a running run still exists (on this host)."""
        if owner is None:
            return False
        host, _, pid_text = owner.rpartition(":")
        me = owner_id()
        if owner == me:
            return (str(self.path), run_id) in ACTIVE
        if host != me.rpartition(":")[0]:
            return True  # another machine's process: assume it lives, never steal its run
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError):
            return True
        return True
