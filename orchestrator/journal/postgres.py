"""The PostgreSQL backend: one database a team shares (``postgresql://user@host:port/db``).

Same rows as the SQLite file (a run, its batches, its blobs), in tables prefixed
``stepweave_`` so the journal can live in a database that holds other things. Two things
only a shared database needs:

- **Leases.** A run claimed by a ``stepweave worker`` carries ``lease_until`` (database
  clock, so hosts' clocks need not agree); it is alive while the lease is, and a worker
  whose lease expired has lost the run. Every commit is fenced by the owner: it writes
  nothing unless the run is still this process's, so a worker that lost its run cannot
  start a step another worker now runs.
- **Reconnecting.** When the server restarts, the writer thread reconnects (with backoff,
  up to ``RECONNECT_TIMEOUT``) and commits what was waiting; until then the durability
  barrier holds dependents back, so a run waits and continues, and nothing is lost.

A commit is one statement (a data-modifying CTE: update the run, insert the batch and its
blobs only if the update matched), so one round trip per group commit.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg

from ..errors import JournalError, ResumeError
from .backend import RunEnd, RunRows, RunStart, owner_alive, owner_id, redact_url
from .codec import Blob
from .pgschema import ensure_schema, schema_version
from .schema import Durability

__all__ = ["RECONNECT_TIMEOUT", "PostgresBackend", "PostgresWriter"]

#: How long a writer keeps trying to reach a server that went away before the run fails.
RECONNECT_TIMEOUT = 60.0
#: The channel a run's end is announced on (payload: the run id): ``submit --wait``.
ENDED_CHANNEL = "stepweave_run_ended"

_COLUMNS = "run_id, name, status, started_at, ended_at, tasks_total, tasks_done, error, owner, meta"
# Whether the lease is still valid, by the database's clock.
_LEASED = "(lease_until IS NOT NULL AND lease_until > extract(epoch FROM clock_timestamp()))"


class PostgresBackend:
    """Runs in the PostgreSQL database at ``url`` (schema created and migrated on first use)."""

    def __init__(self, url: str, *, durability: Durability = "process") -> None:
        self.url = url
        self.durability: Durability = durability
        self.where = redact_url(url)
        self.key = self.where
        self._secret = urlsplit(url).password
        self._local = threading.local()
        self._kept: list[psycopg.Connection[Any]] = []
        # Closed with the backend, from whichever thread lets it go.
        weakref.finalize(self, _close_all, self._kept)

    def error(self, exc: BaseException, doing: str = "") -> JournalError:
        """A ``JournalError`` naming the database (never its password) for a psycopg error."""
        text = str(exc).strip()
        if self._secret:  # as written in the URL, and percent-decoded
            for secret in {self._secret, unquote(self._secret)}:
                text = text.replace(secret, "***")
        return JournalError(f"{self.where}: {doing + ': ' if doing else ''}{text}")

    def connect(self, *, create: bool = True) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise self.error(exc, "cannot connect to the journal") from None
        try:
            ensure_schema(conn, self.where, create=create)
            # "power": wait for the commit to reach the disk (of the server and of its
            # synchronous standbys); "process": the server has it, which outlives us.
            conn.execute(f"SET synchronous_commit = {'on' if self.durability == 'power' else 'local'}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        # One connection per thread, kept: a connection costs the server a process, and a
        # worker reads every run it claims.
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self.connect(create=False)
            self._kept.append(conn)
        try:
            yield conn
        except psycopg.Error as exc:
            conn.close()
            self._local.conn = None
            raise self.error(exc) from None

    def exists(self) -> bool:
        """Whether the tables are there. A server that cannot be reached counts as there:
        the read that follows reports why, instead of "no journal yet"."""
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                return schema_version(conn) is not None
        except psycopg.Error:
            return True

    def check(self) -> None:
        self.connect().close()

    def writer(self) -> PostgresWriter:
        return PostgresWriter(self, self.connect())

    def _alive(self, run_id: str, owner: str | None, lease_until: float | None, leased: bool) -> bool:
        if lease_until is None or owner == owner_id():
            return owner_alive(self.key, run_id, owner)
        return leased

    def list_rows(self, limit: int | None) -> list[tuple[tuple[Any, ...], bool]]:
        sql = f"SELECT {_COLUMNS}, lease_until, {_LEASED} FROM stepweave_runs ORDER BY started_at DESC"
        with self._reading() as conn:
            rows = conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [(tuple(row[:10]), self._alive(row[0], row[8], row[10], row[11])) for row in rows]

    def read(self, run_id: str) -> RunRows | None:
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS}, lease_until, {_LEASED} FROM stepweave_runs WHERE run_id = %s", (run_id,)
            ).fetchone()
            if row is None:
                return None
            batches = conn.execute(
                "SELECT seq, data FROM stepweave_batches WHERE run_id = %s ORDER BY seq", (run_id,)
            ).fetchall()
            blobs = conn.execute(
                "SELECT digest, data FROM stepweave_blobs WHERE run_id = %s", (run_id,)
            ).fetchall()
        alive = self._alive(row[0], row[8], row[10], row[11])
        return RunRows(tuple(row[:10]), alive, [(s, d) for s, d in batches], {d: bytes(b) for d, b in blobs})

    def prune(self, cutoff: float) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT run_id, owner, lease_until, {_LEASED} FROM stepweave_runs "
                "WHERE started_at < %s AND status <> 'queued'",
                (cutoff,),
            ).fetchall()
            doomed = [r[0] for r in rows if not self._alive(*r)]
            with conn.transaction():
                for table in ("stepweave_batches", "stepweave_blobs", "stepweave_runs"):
                    conn.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", (doomed,))
        return doomed


def _close_all(connections: list[psycopg.Connection[Any]]) -> None:
    for conn in connections:
        conn.close()
    connections.clear()


_REGISTER = """
INSERT INTO stepweave_runs (run_id, name, status, started_at, tasks_total, owner, meta)
VALUES (%(run)s, %(name)s, %(status)s, %(at)s, %(total)s, %(owner)s, %(meta)s)
ON CONFLICT (run_id) DO NOTHING
"""
# Compare-and-set on the owner: of two processes resuming the same run, exactly one wins.
# A worker keeps the lease it took when it claimed the run; anyone else resumes unleased.
_CLAIM = """
UPDATE stepweave_runs SET status = 'running', ended_at = NULL, error = NULL, owner = %(me)s,
    lease_until = CASE WHEN owner = %(me)s THEN lease_until END
WHERE run_id = %(run)s AND owner IS NOT DISTINCT FROM %(previous)s
RETURNING (SELECT max(seq) FROM stepweave_batches WHERE run_id = %(run)s)
"""
_PROGRESS = (
    "UPDATE stepweave_runs SET tasks_done = tasks_done + %(done)s, tasks_total = tasks_total + %(added)s "
    "WHERE run_id = %(run)s AND owner = %(me)s RETURNING run_id"
)
_END = (
    "UPDATE stepweave_runs SET status = %(status)s, ended_at = %(ended)s, error = %(error)s, "
    "tasks_total = %(total)s, tasks_done = %(finished)s, owner = NULL, lease_until = NULL "
    "WHERE run_id = %(run)s AND owner = %(me)s RETURNING run_id"
)
_BATCH = "INSERT INTO stepweave_batches (run_id, seq, data) SELECT run_id, %(seq)s, %(data)s FROM u"
_BLOBS = (
    "INSERT INTO stepweave_blobs (run_id, digest, data) SELECT u.run_id, b.digest, b.data "
    "FROM u, unnest(%(digests)s::text[], %(datas)s::bytea[]) AS b(digest, data) ON CONFLICT DO NOTHING"
)


class PostgresWriter:
    """One run's connection, used by its writer thread only; reconnects when the server
    goes away."""

    def __init__(self, backend: PostgresBackend, conn: psycopg.Connection[Any]) -> None:
        self._backend = backend
        self._conn = conn
        self._me = owner_id()

    def register(self, start: RunStart) -> None:
        status = "running" if start.owner else "queued"
        params = {
            "run": start.run_id,
            "name": start.name,
            "status": status,
            "at": start.started_at,
            "total": start.tasks_total,
            "owner": start.owner,
            "meta": start.meta,
        }
        try:
            with self._conn.transaction():
                inserted = self._conn.execute(_REGISTER, params).rowcount
                if inserted != 1:
                    raise JournalError(
                        f"{self._backend.where}: a run with id {start.run_id!r} is already journaled "
                        "(resume it with `stepweave resume`, or pick another id)"
                    )
                # The graph goes in with the run: a journaled run can always be resumed.
                self._conn.execute(
                    "INSERT INTO stepweave_batches (run_id, seq, data) VALUES (%s, 1, %s)",
                    (start.run_id, start.graph_batch),
                )
                if start.owner is None:
                    self._conn.execute("SELECT pg_notify('stepweave_queue', %s)", (start.run_id,))
        except psycopg.Error as exc:
            raise self._backend.error(exc, f"cannot record run {start.run_id!r}") from None

    def claim(self, run_id: str, previous_owner: str | None) -> int:
        try:
            row = self._conn.execute(
                _CLAIM, {"me": self._me, "run": run_id, "previous": previous_owner}
            ).fetchone()
        except psycopg.Error as exc:
            raise self._backend.error(exc, f"cannot resume run {run_id!r}") from None
        if row is None:
            raise ResumeError(
                f"{self._backend.where}: run {run_id!r} is being resumed by another process right now"
            )
        return int(row[0] or 0)

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
        deadline = time.monotonic() + RECONNECT_TIMEOUT
        delay = 0.05
        while True:
            try:
                self._append(run_id, seq, batch, blobs, done, added, end)
                return
            except psycopg.OperationalError as exc:
                if not self._conn.closed and not self._conn.broken:
                    raise self._backend.error(exc, f"writing run {run_id!r} failed") from None
                # The server went away (a restart, a failover): reconnect and commit again,
                # unless the lost answer was to a commit that did happen.
                while True:
                    if time.monotonic() > deadline:
                        raise self._backend.error(
                            exc, f"writing run {run_id!r} failed, reconnecting gave up"
                        ) from None
                    time.sleep(delay)  # backoff between attempts on this thread, not the loop
                    delay = min(delay * 2, 1.0)
                    try:
                        self._conn = self._backend.connect()
                        break
                    except JournalError:
                        continue
                found = self._conn.execute(
                    "SELECT 1 FROM stepweave_batches WHERE run_id = %s AND seq = %s", (run_id, seq)
                ).fetchone()
                if found is not None:
                    return

    def _append(
        self,
        run_id: str,
        seq: int,
        batch: str,
        blobs: Sequence[Blob],
        done: int,
        added: int,
        end: RunEnd | None,
    ) -> None:
        params: dict[str, Any] = {"run": run_id, "me": self._me, "seq": seq, "data": batch}
        steps = [f"u AS ({_END if end is not None else _PROGRESS})", f"b AS ({_BATCH})"]
        if blobs:
            steps.append(f"x AS ({_BLOBS})")
            params["digests"] = [digest for digest, _ in blobs]
            params["datas"] = [raw for _, raw in blobs]
        if end is not None:
            params.update(
                status=end.status,
                ended=end.ended_at,
                error=end.error,
                total=end.tasks_total,
                finished=end.tasks_done,
            )
            # The end is announced to whoever waits for it (`submit --wait`), on commit.
            sql = f"WITH {', '.join(steps)} SELECT count(*), max(pg_notify('{ENDED_CHANNEL}', run_id)::text) FROM u"
        else:
            params.update(done=done, added=added)
            sql = f"WITH {', '.join(steps)} SELECT count(*) FROM u"
        row = self._conn.execute(sql, params).fetchone()
        if row is None or row[0] != 1:
            raise JournalError(
                f"{self._backend.where}: run {run_id!r} is no longer this process's: another worker "
                "took it over (its lease expired); this process stops writing it"
            )

    def close(self) -> None:
        self._conn.close()
