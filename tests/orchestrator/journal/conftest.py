"""Shared fixtures of the journal tests: a fresh journal per test, never the user's.

``journal`` runs each test against both backends: a SQLite file, and a database of its
own on the PostgreSQL server the session starts once (``pg_server``). ``raw(journal)``
reaches under the journal (to fake a crash, or to look at what is committed) in either.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import pytest

from orchestrator.journal import Journal

from .pg_server import server

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything that falls back to the default journal lands in this test's directory.
    monkeypatch.setenv("STEPWEAVE_JOURNAL", str(tmp_path / "default-journal.sqlite3"))


def new_journal(backend: str, tmp_path: Path) -> Journal:
    if backend == "sqlite":
        return Journal(tmp_path / "journal.sqlite3")
    return Journal(server().new_database())


@pytest.fixture(params=BACKENDS)
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    return new_journal(request.param, tmp_path)


class Raw(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...


_TABLES = re.compile(r"\b(runs|batches|blobs)\b")


@contextmanager
def raw(journal: Journal) -> Iterator[Raw]:
    """A connection of its own to the journal's storage, committing on exit; SQLite's
    ``?`` placeholders and table names work for PostgreSQL too."""
    if journal.path is not None:
        with sqlite3.connect(journal.path) as conn:

            class _Lite:
                def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
                    return conn.execute(sql, params).fetchall()

            yield _Lite()
        conn.close()
        return
    import psycopg

    backend = journal.postgres
    assert backend is not None
    with psycopg.connect(backend.url) as pg:

        class _Pg:
            def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
                cursor = pg.execute(_TABLES.sub(r"stepweave_\1", sql.replace("?", "%s")), params)  # type: ignore[arg-type]
                return cursor.fetchall() if cursor.description else []

        yield _Pg()
