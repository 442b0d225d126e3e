"""``Journal``: the handle users pass around — where the runs are, and the operations on them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import JournalError
from ..graph import TaskGraph
from .backend import Backend, RunStart, is_postgres_url, redact_url, sqlite_path
from .codec import dumps, encode_graph
from .reader import RunHistory, RunRecord, list_runs, load_run
from .schema import Durability, default_path
from .sqlite import SQLiteBackend
from .writer import RunRecorder

if TYPE_CHECKING:
    from .postgres import PostgresBackend
    from .queue import RunQueue

__all__ = ["Journal"]


class Journal:
    """The durable record of runs: a SQLite file (the default) or a PostgreSQL database.

    ``Journal()`` uses ``$STEPWEAVE_JOURNAL`` or the user's data directory. Pass it to
    ``Orchestrator(journal=...)`` to record runs and to resume them.

    Args:
        location: a file path or ``sqlite:///path`` (one machine), or
            ``postgresql://user@host:port/db`` (a team: shared history, the run queue of
            ``stepweave worker``; needs the ``postgres`` extra).
        durability: ``"process"`` — a committed event survives the process being killed
            (the default); ``"power"`` — it also survives an OS crash (fsync per commit).
    """

    def __init__(
        self, location: str | os.PathLike[str] | None = None, *, durability: Durability = "process"
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', got {durability!r}")
        self.durability: Durability = durability
        text = os.fspath(location) if location is not None else os.environ.get("STEPWEAVE_JOURNAL")
        self.backend: Backend
        #: The SQLite file (``None`` for a PostgreSQL journal).
        self.path: Path | None
        if text is not None and is_postgres_url(text):
            try:  # psycopg only when a team journal is used
                from .postgres import PostgresBackend
            except ImportError as exc:
                raise JournalError(
                    f"{redact_url(text)}: a PostgreSQL journal needs psycopg: "
                    f"pip install 'stepweave[postgres]' ({exc})"
                ) from None
            self.backend = PostgresBackend(text, durability=durability)
            self.path = None
        else:
            path = sqlite_path(text) if text else default_path()
            self.backend = SQLiteBackend(path, durability)
            self.path = path

    @property
    def where(self) -> str:
        """The file, or the database URL without its password: what messages name."""
        return self.backend.where

    @property
    def postgres(self) -> PostgresBackend | None:
        """The PostgreSQL backend (which also holds the run queue), if this is one."""
        if self.path is not None:
            return None
        from .postgres import PostgresBackend

        return self.backend if isinstance(self.backend, PostgresBackend) else None

    def __repr__(self) -> str:
        return f"Journal({redact_url(self.where)!r})"

    def exists(self) -> bool:
        """Whether the journal is there already (reading never creates one)."""
        return self.backend.exists()

    def runs(self, *, limit: int | None = None) -> list[RunRecord]:
        """Runs in the journal, newest first."""
        return list_runs(self.backend, limit=limit)

    def load(self, run_id: str) -> RunHistory:
        """One run rebuilt from its events (``RunNotFound`` if there is no such run)."""
        return load_run(self.backend, run_id)

    def prune(self, *, older_than: float, now: float | None = None) -> list[str]:
        """Delete runs that started more than ``older_than`` seconds ago and are not live.

        Returns the deleted run ids; their events and stored outputs go with them.
        """
        cutoff = (now if now is not None else time.time()) - older_than
        return self.backend.prune(cutoff)

    def recorder(
        self,
        run_id: str,
        graph: TaskGraph,
        *,
        meta: Mapping[str, Any] | None = None,
    ) -> RunRecorder:
        """A recorder for a new run of ``graph`` (started by the ``Run`` that uses it)."""
        return RunRecorder(self.backend, run_id, graph=graph, meta=meta)

    def resumer(self, run_id: str, *, previous_owner: str | None, echoes: Collection[str]) -> RunRecorder:
        """A recorder that claims run ``run_id`` back from ``previous_owner`` and goes on.

        ``echoes``: tasks restored from the journal, whose end the resumed run repeats.
        """
        return RunRecorder(
            self.backend, run_id, resuming=True, resume_from_owner=previous_owner, echoes=echoes
        )

    def submit(
        self,
        graph: TaskGraph,
        *,
        inputs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Queue a run of ``graph`` for a worker (``stepweave worker``); returns its id.

        The run is journaled at once, with its graph and inputs, and no owner: a worker
        claims it and runs it by the rules of ``resume`` (nothing has run yet).
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        now = time.time()
        writer = self.backend.writer()
        try:
            writer.register(
                RunStart(
                    run_id=run_id,
                    name=graph.name,
                    started_at=now,
                    tasks_total=len(graph),
                    meta=dumps({**(metadata or {}), "inputs": dict(inputs or {})}),
                    graph_batch="[" + encode_graph(graph, now) + "]",
                    owner=None,
                )
            )
        finally:
            writer.close()
        return run_id

    def queue(self, *, owner: str, lease: float = 30.0) -> RunQueue:
        """The run queue (PostgreSQL journals only): ``async with journal.queue(...)``."""
        backend = self.postgres
        if backend is None:
            raise JournalError(
                f"{self.where}: the run queue needs a PostgreSQL journal "
                "(--journal postgresql://user@host:port/db); a SQLite file serves one machine"
            )
        from .queue import RunQueue

        return RunQueue(backend, owner=owner, lease=lease)

    def check(self) -> None:
        """Open the journal (creating it if missing) and check its format; raise if unusable."""
        self.backend.check()
