"""The PostgreSQL journal's tables and their migrations.

``stepweave_schema`` records every migration applied, by version. A process applies the
missing ones on first use, under an advisory lock (two workers starting together migrate
once); a database migrated by a newer stepweave is refused with ``JournalVersionError``,
never read with the wrong meaning — the same rule as the SQLite file's format version.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ..errors import JournalError, JournalVersionError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "ensure_schema", "schema_version"]

#: (version, statements): applied in order, each in its own transaction.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE stepweave_runs (
            run_id      text PRIMARY KEY,
            name        text,
            status      text NOT NULL,      -- queued | running | succeeded | failed | cancelled
            started_at  double precision NOT NULL,
            ended_at    double precision,
            tasks_total integer NOT NULL DEFAULT 0,
            tasks_done  integer NOT NULL DEFAULT 0,
            error       text,
            owner       text,               -- host:pid of the process running it now
            meta        text NOT NULL DEFAULT '{}',
            lease_until double precision    -- a worker's lease (epoch seconds, database clock)
        );
        CREATE TABLE stepweave_batches (
            run_id text NOT NULL,
            seq    integer NOT NULL,
            data   text NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE stepweave_blobs (
            run_id text NOT NULL,
            digest text NOT NULL,
            data   bytea NOT NULL,
            PRIMARY KEY (run_id, digest)
        );
        CREATE INDEX stepweave_runs_by_start ON stepweave_runs (started_at);
        -- What a worker claims: queued runs, and running ones whose lease may have expired.
        CREATE INDEX stepweave_runs_claimable ON stepweave_runs (started_at)
            WHERE status IN ('queued', 'running');
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
# pg_advisory_xact_lock key: "SWJ1", as for the SQLite file's application id.
_LOCK = 0x53574A31
_ready: set[str] = set()


def ensure_schema(conn: psycopg.Connection[Any], where: str, *, create: bool) -> None:
    """Check (and with ``create``, apply) the migrations; once per database per process."""
    if where in _ready:
        return
    try:
        version = schema_version(conn)
        if version is None and not create:
            raise JournalError(f"{where}: no journal here (runs are journaled by `stepweave run`)")
        if version is None or version < SCHEMA_VERSION:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS stepweave_schema "
                    "(version integer PRIMARY KEY, applied_at double precision NOT NULL)"
                )
                version = schema_version(conn) or 0
                for number, statements in MIGRATIONS:
                    if number > version:
                        conn.execute(statements)
                        conn.execute(
                            "INSERT INTO stepweave_schema (version, applied_at) VALUES (%s, %s)",
                            (number, time.time()),
                        )
                version = max(version, SCHEMA_VERSION)
    except psycopg.Error as exc:
        raise JournalError(f"{where}: cannot prepare the journal's tables: {exc}") from None
    if version > SCHEMA_VERSION:
        raise JournalVersionError(
            f"{where}: journal schema version {version} was written by a newer stepweave; "
            f"this one reads version {SCHEMA_VERSION} only (upgrade stepweave)"
        )
    _ready.add(where)


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    exists = conn.execute("SELECT to_regclass('stepweave_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT max(version) FROM stepweave_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else None
