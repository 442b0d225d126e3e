"""The ``sql`` tool against real SQLite files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tools import ToolError
from tools.builtin import SqlResult, sql


def make_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER)")
        conn.executemany(
            "INSERT INTO items (name, qty) VALUES (?, ?)", [("apple", 3), ("pear", 0), ("plum", 7)]
        )
    conn.close()
    return path


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "shop.db")


async def test_select_with_positional_params(db: Path) -> None:
    result = await sql.invoke(
        {"path": str(db), "query": "SELECT name, qty FROM items WHERE qty > ? ORDER BY id", "params": [1]}
    )
    assert isinstance(result, SqlResult)
    assert result.columns == ["name", "qty"]
    assert result.rows == [{"name": "apple", "qty": 3}, {"name": "plum", "qty": 7}]
    assert result.rowcount == 2
    assert result.truncated is False
    assert result.lastrowid is None


async def test_named_params_are_bound_not_pasted(db: Path) -> None:
    hostile = "x' OR '1'='1"
    result = await sql.invoke(
        {"path": str(db), "query": "SELECT id FROM items WHERE name = :name", "params": {"name": hostile}}
    )
    assert result.rows == []
    result = await sql.invoke(
        {"path": str(db), "query": "SELECT id FROM items WHERE name = :name", "params": {"name": "pear"}}
    )
    assert result.rows == [{"id": 2}]


async def test_read_only_refuses_writes(db: Path) -> None:
    with pytest.raises(ToolError, match=r"read-only.*pass write=true") as info:
        await sql.invoke({"path": str(db), "query": "INSERT INTO items (name, qty) VALUES ('fig', 1)"})
    assert info.value.retryable is False
    with pytest.raises(ToolError, match="read-only"):
        await sql.invoke({"path": str(db), "query": "DROP TABLE items"})
    assert count_rows(db) == 3


async def test_write_mode(db: Path) -> None:
    result = await sql.invoke(
        {
            "path": str(db),
            "query": "INSERT INTO items (name, qty) VALUES (?, ?)",
            "params": ["fig", 1],
            "write": True,
        }
    )
    assert result.rowcount == 1
    assert result.lastrowid == 4
    assert result.columns == [] and result.rows == []
    updated = await sql.invoke(
        {"path": str(db), "query": "UPDATE items SET qty = qty + 1 WHERE qty < 5", "write": True}
    )
    assert updated.rowcount == 3
    assert count_rows(db) == 4


async def test_missing_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(ToolError, match=r"missing\.db' does not exist") as info:
        await sql.invoke({"path": str(missing), "query": "SELECT 1"})
    assert info.value.retryable is False
    with pytest.raises(ToolError, match="pass create=true"):
        await sql.invoke({"path": str(missing), "query": "CREATE TABLE t (x)", "write": True})
    assert not missing.exists()


async def test_create_new_database(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    await sql.invoke({"path": str(path), "query": "CREATE TABLE t (x)", "write": True, "create": True})
    assert path.exists()
    with pytest.raises(ToolError, match="create=true needs write=true"):
        await sql.invoke({"path": str(tmp_path / "other.db"), "query": "SELECT 1", "create": True})


async def test_max_rows_truncates(db: Path) -> None:
    result = await sql.invoke({"path": str(db), "query": "SELECT id FROM items ORDER BY id", "max_rows": 2})
    assert result.rows == [{"id": 1}, {"id": 2}]
    assert result.truncated is True


async def test_sql_errors_are_permanent(db: Path) -> None:
    with pytest.raises(ToolError, match="no such table: nope") as info:
        await sql.invoke({"path": str(db), "query": "SELECT * FROM nope"})
    assert info.value.retryable is False
    with pytest.raises(ToolError, match="binding"):
        await sql.invoke({"path": str(db), "query": "SELECT ?", "params": []})


async def test_duplicate_column_names_are_rejected(db: Path) -> None:
    with pytest.raises(ToolError, match=r"duplicate column names \['id'\]"):
        await sql.invoke({"path": str(db), "query": "SELECT a.id, b.id FROM items a JOIN items b"})


async def test_special_characters_in_the_path(tmp_path: Path) -> None:
    path = make_db(tmp_path / "we?ird #name%.db")
    result = await sql.invoke({"path": str(path), "query": "SELECT count(*) AS n FROM items"})
    assert result.rows == [{"n": 3}]


async def test_cancellation_interrupts_a_long_query(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    call = asyncio.create_task(sql.invoke({"path": str(path), "query": endless}))
    await asyncio.sleep(0.2)
    call.cancel()
    async with asyncio.timeout(5):  # the statement is interrupted; the thread does not linger
        with pytest.raises(asyncio.CancelledError):
            await call
