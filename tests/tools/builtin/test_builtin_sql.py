"""The ``sql`` tool against real SQLite files."""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tools import ToolError
from tools.builtin import FILE_ROOT_ENV, SqlResult, sql


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


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


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


# --- result size: rows and bytes are capped while fetching, not afterwards ----------------

ENDLESS_BLOBS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x, zeroblob(100000) AS b FROM c"
)


async def test_max_bytes_stops_fetching_an_endless_result(db: Path) -> None:
    # Without a streaming cap this never ends (the statement is endless): it must stop at ~1 MB.
    async with asyncio.timeout(10):
        result = await sql.invoke({"path": str(db), "query": ENDLESS_BLOBS, "max_bytes": 1_000_000})
    assert result.truncated is True
    assert len(result.rows) == 9  # 9 x (100000 + 8 + names) <= 1e6 < 10 x ...
    assert result.rowcount == 9


async def test_default_max_bytes_caps_the_review_query(db: Path) -> None:
    # The review's sql_huge_rows query: 3000 rows of 1 MB with the defaults (10 MB, 10000 rows).
    query = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
        "SELECT x, zeroblob(1000000) FROM c LIMIT 3000"
    )
    async with asyncio.timeout(10):
        result = await sql.invoke({"path": str(db), "query": query})
    assert result.truncated is True and len(result.rows) == 10


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "query",
    ["SELECT zeroblob(900000000)", "SELECT hex(randomblob(300000000))", "SELECT length(zeroblob(2e9))"],
)
async def test_a_huge_value_fails_before_it_is_made(db: Path, query: str) -> None:
    before = _peak_rss_mb()
    with pytest.raises(ToolError, match=r"bigger than max_bytes=10485760.*raise max_bytes") as info:
        await sql.invoke({"path": str(db), "query": query})
    assert info.value.retryable is False
    assert _peak_rss_mb() - before < 100  # the 300-900 MB value was never built


async def test_a_first_row_over_max_bytes_fails(db: Path) -> None:
    # Each value is under the cap (and SQLite's 1 MB floor), the row is not: nothing fits.
    with pytest.raises(ToolError, match=r"first row of the result is \d+ bytes, over max_bytes=1000"):
        await sql.invoke(
            {"path": str(db), "query": "SELECT zeroblob(600) AS a, zeroblob(600) AS b", "max_bytes": 1000}
        )


async def test_text_is_counted_in_utf8_bytes(db: Path) -> None:
    result = await sql.invoke(
        {"path": str(db), "query": "SELECT 'ééééé' AS t UNION ALL SELECT 'ééééé'", "max_bytes": 12}
    )
    assert result.rows == [{"t": "ééééé"}] and result.truncated is True  # 1 + 10 bytes each


async def test_write_mode_runs_the_statement_to_the_end_past_the_caps(db: Path) -> None:
    query = (
        "INSERT INTO items (name, qty) "
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5) "
        "SELECT 'n' || x, x FROM c RETURNING id"
    )
    result = await sql.invoke({"path": str(db), "query": query, "write": True, "max_rows": 2})
    assert result.rows == [{"id": 4}, {"id": 5}] and result.truncated is True
    assert count_rows(db) == 8  # all five rows went in, not only the two returned


MEMORY_CHILD = """
import asyncio, json, resource, sys
from tools import ToolError
from tools.builtin import sql

def vm_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * resource.getpagesize()

async def main(path):
    # Room for about 300 MB more; the query asks for 2 GB of rows.
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 300 * 2**20, resource.RLIM_INFINITY))
    query = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
             "SELECT x, zeroblob(4000000) FROM c LIMIT 500")
    try:
        await sql.invoke({"path": path, "query": query, "max_bytes": 2**31})
    except ToolError as exc:
        print(json.dumps({"message": str(exc), "retryable": exc.retryable}))

asyncio.run(main(sys.argv[1]))
"""


def test_running_out_of_memory_is_a_clear_step_error(db: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(db)], capture_output=True, text=True, timeout=50, check=False
    )
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["retryable"] is False
    assert "ran out of memory building the result" in outcome["message"]
    assert "shop.db" in outcome["message"]


# --- read-only statements cannot create files or change settings -------------------------


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("ATTACH DATABASE '{w}/attached.db' AS a", "ATTACH or VACUUM is not allowed on a read-only"),
        ("ATTACH DATABASE 'file:{w}/attached2.db?mode=rwc' AS a", "ATTACH or VACUUM is not allowed"),
        ("VACUUM INTO '{w}/vac.db'", "ATTACH or VACUUM is not allowed"),
        ("VACUUM", "ATTACH or VACUUM is not allowed"),
        ("DETACH DATABASE temp", "DETACH is not allowed"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only = OFF changes a setting; pass write=true"),
        ("PRAGMA journal_mode = WAL", "PRAGMA journal_mode = WAL changes a setting"),
        ("PRAGMA user_version = 42", "PRAGMA user_version = 42 changes a setting"),
        ("PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA wal_checkpoint is not allowed on a read-only"),
        ("PRAGMA temp_store_directory = '{w}'", "PRAGMA temp_store_directory is not allowed"),
        ("SELECT load_extension('{w}/evil.so')", r"function load_extension\(\) is not allowed"),
        ("SELECT fts3_tokenizer('simple')", r"function fts3_tokenizer\(\) is not allowed"),
    ],
)
async def test_read_only_refusals(tmp_path: Path, query: str, refusal: str) -> None:
    db = make_db(tmp_path / "ro.db")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ToolError, match=refusal) as info:
        await sql.invoke({"path": str(db), "query": query.format(w=work)})
    assert info.value.retryable is False
    assert "SQL refused on" in str(info.value)
    assert listing(work) == []  # nothing was created
    assert listing(tmp_path) == ["ro.db", "work"]


@pytest.mark.parametrize(
    "query",
    [
        "PRAGMA table_info(items)",
        "SELECT * FROM pragma_table_info('items')",
        "PRAGMA user_version",
        "PRAGMA journal_mode",
        "PRAGMA integrity_check",
        "SELECT value FROM json_each('[1, 2]')",
        "SELECT json_extract('{\"a\": 1}', '$.a') AS a, printf('%05d', 7) AS p, strftime('%Y', 'now') AS y",
        "SELECT name, sum(qty) OVER (ORDER BY id) AS running, group_concat(name) OVER () AS names FROM items",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c",
        "SELECT upper(name), length(name), abs(-qty), coalesce(NULL, 1), hex(zeroblob(2)) FROM items",
    ],
)
async def test_reading_statements_still_work(db: Path, query: str) -> None:
    result = await sql.invoke({"path": str(db), "query": query})
    assert result.rows


async def test_write_mode_may_vacuum_and_set_pragmas_but_not_load_code(db: Path) -> None:
    await sql.invoke({"path": str(db), "query": "VACUUM", "write": True})
    await sql.invoke({"path": str(db), "query": "PRAGMA user_version = 7", "write": True})
    assert (await sql.invoke({"path": str(db), "query": "PRAGMA user_version"})).rows == [{"user_version": 7}]
    with pytest.raises(ToolError, match=r"function load_extension\(\) is not allowed"):
        await sql.invoke({"path": str(db), "query": "SELECT load_extension('x')", "write": True})
    with pytest.raises(ToolError, match="PRAGMA hard_heap_limit is not allowed"):  # process-wide
        await sql.invoke({"path": str(db), "query": "PRAGMA hard_heap_limit = 1", "write": True})
    with pytest.raises(ToolError, match="ATTACH or VACUUM of a URI"):
        await sql.invoke({"path": str(db), "query": f"ATTACH 'file:{db}?mode=ro' AS a", "write": True})


async def test_a_view_in_the_file_cannot_call_a_refused_function(tmp_path: Path) -> None:
    # The file is data too: a view defined by whoever wrote it runs under the same rules.
    path = tmp_path / "trap.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE VIEW v AS SELECT load_extension('/tmp/evil.so') AS t")
    conn.close()
    with pytest.raises(ToolError, match=r"load_extension"):
        await sql.invoke({"path": str(path), "query": "SELECT * FROM v"})


# --- the database path: a file, inside $STEPWEAVE_FILE_ROOT when that is set ---------------


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    make_db(root / "in.db")
    make_db(tmp_path / "outside.db")
    (root / "link.db").symlink_to(tmp_path / "outside.db")
    monkeypatch.setenv(FILE_ROOT_ENV, str(root))
    return root


async def test_paths_are_relative_to_the_root(root: Path) -> None:
    result = await sql.invoke({"path": "in.db", "query": "SELECT count(*) AS n FROM items"})
    assert result.rows == [{"n": 3}]
    result = await sql.invoke({"path": str(root / "in.db"), "query": "SELECT count(*) AS n FROM items"})
    assert result.rows == [{"n": 3}]


@pytest.mark.parametrize("path", ["../outside.db", "{tmp}/outside.db", "link.db", "sub/../../outside.db"])
async def test_paths_outside_the_root_are_refused(root: Path, path: str) -> None:
    with pytest.raises(ToolError, match=r"outside the allowed root .*STEPWEAVE_FILE_ROOT") as info:
        await sql.invoke({"path": path.format(tmp=root.parent), "query": "SELECT 1"})
    assert info.value.retryable is False


async def test_attach_outside_the_root_is_refused_in_write_mode(root: Path) -> None:
    outside = root.parent / "new.db"
    with pytest.raises(ToolError, match=r"ATTACH or VACUUM: path .* outside the allowed root"):
        await sql.invoke({"path": "in.db", "query": f"ATTACH '{outside}' AS a", "write": True})
    with pytest.raises(ToolError, match=r"outside the allowed root"):
        await sql.invoke({"path": "in.db", "query": f"VACUUM INTO '{outside}'", "write": True})
    assert not outside.exists()
    inside = root / "copy.db"
    await sql.invoke({"path": "in.db", "query": f"VACUUM INTO '{inside}'", "write": True})
    assert inside.exists()


@pytest.mark.parametrize("path", ["file:{db}?mode=rwc", "FILE:{db}", "file:///{db}"])
async def test_uri_paths_are_refused(db: Path, path: str) -> None:
    with pytest.raises(ToolError, match="is a URI; give a file path") as info:
        await sql.invoke({"path": path.format(db=db), "query": "SELECT 1"})
    assert info.value.retryable is False
