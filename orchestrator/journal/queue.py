"""The run queue in a PostgreSQL journal: what ``stepweave worker`` claims, renews, hands back.

A queued run is an ordinary journaled run (its row and its graph) with no owner and the
status ``queued``; a worker claims it with ``FOR UPDATE SKIP LOCKED`` (two workers never
claim one run) and runs it through ``Orchestrator.resume``, so a fresh run and a run taken
over from a dead worker follow the same rules. The claim takes a lease; the worker renews
it while it works. A run whose lease expired (its worker died, or lost the database for
longer than the lease) is claimable again; its old worker's commits are refused from then
on (every commit is fenced by the owner, see ``postgres``).

Waiting is event-driven: ``submit`` notifies ``stepweave_queue``, a run's end notifies
``stepweave_run_ended``; only lease expiry, which nothing announces, is checked on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import psycopg

from ..errors import JournalError
from .postgres import ENDED_CHANNEL, PostgresBackend

__all__ = ["QUEUE_CHANNEL", "RunQueue"]

QUEUE_CHANNEL = "stepweave_queue"
_NOW = "extract(epoch FROM clock_timestamp())"
_CLAIM = f"""
UPDATE stepweave_runs SET owner = %(me)s, status = 'running', lease_until = {_NOW} + %(lease)s
WHERE run_id = (
    SELECT run_id FROM stepweave_runs
    WHERE status = 'queued' OR (status = 'running' AND lease_until < {_NOW})
    ORDER BY started_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
RETURNING run_id
"""
_RENEW = f"""
UPDATE stepweave_runs SET lease_until = {_NOW} + %(lease)s
WHERE run_id = ANY(%(runs)s) AND owner = %(me)s
RETURNING run_id
"""
_FINISHED = ("succeeded", "failed", "cancelled")


class RunQueue:
    """The queue of one PostgreSQL journal, for one worker process (``owner``).

    ``async with RunQueue(backend, owner=..., lease=30)``: two connections, one for
    commands and one that listens. A lost connection (the server restarted) is reopened
    on the next call, with backoff; ``JournalError`` only when the server stays away.
    """

    def __init__(self, backend: PostgresBackend, *, owner: str, lease: float = 30.0) -> None:
        if lease <= 0:
            raise ValueError(f"lease must be positive, got {lease}")
        self.backend = backend
        self.owner = owner
        self.lease = lease
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._events: asyncio.Queue[str] = asyncio.Queue()
        self._listening: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunQueue:
        await self._command_connection()
        self._listening = asyncio.create_task(self._listen(), name="stepweave-queue-listen")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._listening is not None:
            self._listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listening
        for conn in (self._conn, self._listener):
            if conn is not None:
                await conn.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        # The tables exist: the backend created or checked them (synchronously) already.
        try:
            return await psycopg.AsyncConnection.connect(
                self.backend.url, autocommit=True, connect_timeout=10
            )
        except psycopg.Error as exc:
            raise self.backend.error(exc, "cannot connect to the journal") from None

    async def _command_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await self._connect()
        return self._conn

    async def _run(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement, reconnecting (with backoff, for about a lease) if the server left."""
        delay = 0.05
        waited = 0.0
        while True:
            try:
                conn = await self._command_connection()
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall() if cursor.description else []
            except (psycopg.OperationalError, JournalError) as exc:
                if self._conn is not None and not (self._conn.closed or self._conn.broken):
                    raise self.backend.error(exc) from None
                if waited > max(self.lease, 10.0):
                    raise self.backend.error(exc, "the journal's server stays unreachable") from None
                await asyncio.sleep(delay)  # reconnect backoff: the server is restarting
                waited += delay
                delay = min(delay * 2, 1.0)

    async def _listen(self) -> None:
        """Forward notifications (new work, ended runs) to ``_events``; reconnect if cut off."""
        delay = 0.05
        while True:
            try:
                self._listener = await self._connect()
                await self._listener.execute(f"LISTEN {QUEUE_CHANNEL}")
                await self._listener.execute(f"LISTEN {ENDED_CHANNEL}")
                delay = 0.05
                self._events.put_nowait("")  # (re)connected: whatever was missed, look again
                async for note in self._listener.notifies():
                    self._events.put_nowait(note.payload)
            except (psycopg.OperationalError, JournalError):
                await asyncio.sleep(delay)  # reconnect backoff: the server is restarting
                delay = min(delay * 2, 1.0)

    async def wait_for_news(self, within: float) -> None:
        """Until something was submitted or ended, or ``within`` seconds (leases expire silently)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events.get(), within)
        while not self._events.empty():
            self._events.get_nowait()

    async def claim(self) -> str | None:
        """Take the oldest queued run (or one whose lease expired), or None if there is none."""
        rows = await self._run(_CLAIM, {"me": self.owner, "lease": self.lease})
        return str(rows[0][0]) if rows else None

    async def renew(self, run_ids: list[str]) -> set[str]:
        """Extend the lease of these runs; returns those still ours."""
        if not run_ids:
            return set()
        rows = await self._run(_RENEW, {"me": self.owner, "lease": self.lease, "runs": run_ids})
        return {str(r[0]) for r in rows}

    async def hand_back(self, run_id: str) -> bool:
        """Queue a run this worker stopped (cancelled, not finished) for another worker."""
        rows = await self._run(
            "UPDATE stepweave_runs SET status = 'queued', owner = NULL, lease_until = NULL "
            "WHERE run_id = %(run)s AND (owner IS NULL OR owner = %(me)s) AND status IN ('cancelled', 'running') "
            "RETURNING run_id",
            {"run": run_id, "me": self.owner},
        )
        if rows:
            await self._run(
                "SELECT pg_notify(%(channel)s, %(run)s)", {"channel": QUEUE_CHANNEL, "run": run_id}
            )
        return bool(rows)

    async def give_up(self, run_id: str, error: str) -> None:
        """Mark a claimed run failed without running it (this worker cannot: a tool is missing)."""
        await self._run(
            f"UPDATE stepweave_runs SET status = 'failed', error = %(error)s, owner = NULL, "
            f"lease_until = NULL, ended_at = {_NOW} WHERE run_id = %(run)s AND owner = %(me)s",
            {"run": run_id, "me": self.owner, "error": error},
        )
        await self._run("SELECT pg_notify(%(channel)s, %(run)s)", {"channel": ENDED_CHANNEL, "run": run_id})

    async def status(self, run_id: str) -> str | None:
        rows = await self._run("SELECT status FROM stepweave_runs WHERE run_id = %(run)s", {"run": run_id})
        return str(rows[0][0]) if rows else None

    async def wait_ended(self, run_id: str) -> str:
        """Until run ``run_id`` has ended; its final status (bound it with ``asyncio.timeout``)."""
        while True:
            status = await self.status(run_id)
            if status is None:
                raise JournalError(f"{self.backend.where}: no run with id {run_id!r}")
            if status in _FINISHED:
                return status
            await self.wait_for_news(max(self.lease, 5.0))
