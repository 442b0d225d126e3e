"""``sql``: one parameterised statement against a SQLite file, read-only unless asked."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError

__all__ = ["SqlResult", "SqlValue", "sql"]

#: A value SQLite stores: NULL, INTEGER, REAL, TEXT or BLOB.
SqlValue = int | float | str | bytes | None
SqlParam = int | float | str | bool | None

#: How many SQLite virtual-machine steps pass between checks for cancellation.
_PROGRESS_STEPS = 1000


class SqlResult(BaseModel):
    """The outcome of one SQL statement."""

    model_config = ConfigDict(ser_json_bytes="base64")

    columns: list[str] = Field(description="Result column names in order (empty when there are no rows).")
    rows: list[dict[str, SqlValue]] = Field(description="Result rows as column-name to value mappings.")
    rowcount: int = Field(
        description="Rows changed by INSERT/UPDATE/DELETE; for other statements, the rows returned."
    )
    truncated: bool = Field(description="Whether more than max_rows rows were available.")
    lastrowid: int | None = Field(description="Rowid of the last inserted row (write mode), else null.")
    duration_s: float = Field(description="Seconds spent running the statement.")


def _database_uri(path: Path, mode: str) -> str:
    # as_uri() percent-encodes '?', '#' and '%' so they cannot be read as URI syntax.
    return f"{path.as_uri()}?mode={mode}"


def _run(
    cancelled: threading.Event,
    path: str,
    query: str,
    params: list[SqlParam] | dict[str, SqlParam],
    write: bool,
    create: bool,
    max_rows: int,
    busy_timeout: float,
) -> SqlResult:
    # Relative paths are taken from the working directory at call time.
    db_path = Path(path).expanduser().absolute()
    if db_path.is_dir():
        raise ToolError(f"SQLite database path {str(db_path)!r} is a directory", retryable=False)
    if not db_path.exists() and not create:
        hint = "" if not write else " (pass create=true to create it)"
        raise ToolError(f"SQLite database {str(db_path)!r} does not exist{hint}", retryable=False)
    mode = "ro" if not write else "rwc" if create else "rw"
    started = time.monotonic()
    try:
        conn = sqlite3.connect(
            _database_uri(db_path, mode), uri=True, timeout=busy_timeout, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise ToolError(f"cannot open SQLite database {str(db_path)!r}: {exc}", retryable=False) from None
    try:
        # A non-zero return aborts the running statement ("interrupted").
        conn.set_progress_handler(lambda: int(cancelled.is_set()), _PROGRESS_STEPS)
        if not write:
            # Belt and braces: mode=ro covers the file, query_only also covers ATTACHed ones.
            conn.execute("PRAGMA query_only = ON")
        with conn:  # commits on success, rolls back on error
            cursor = conn.execute(query, params)
            columns = [d[0] for d in cursor.description or ()]
            fetched = cursor.fetchmany(max_rows + 1) if columns else []
        truncated = len(fetched) > max_rows
        fetched = fetched[:max_rows]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ToolError(
                f"result has duplicate column names {duplicates}; give them distinct names with AS",
                retryable=False,
            )
        rows = [dict(zip(columns, row, strict=True)) for row in fetched]
        rowcount = cursor.rowcount if cursor.rowcount >= 0 and not columns else len(rows)
        return SqlResult(
            columns=columns,
            rows=rows,
            rowcount=rowcount,
            truncated=truncated,
            lastrowid=cursor.lastrowid if write else None,
            duration_s=time.monotonic() - started,
        )
    except sqlite3.OperationalError as exc:
        message = str(exc)
        if "readonly" in message or "read-only" in message or "query_only" in message:
            raise ToolError(
                f"database {str(db_path)!r} is opened read-only ({message}); pass write=true to modify it",
                retryable=False,
            ) from None
        if "locked" in message or "busy" in message:
            raise ToolError(f"database {str(db_path)!r}: {message}") from None  # transient
        raise ToolError(f"SQL error: {message}", retryable=False) from None
    except sqlite3.ProgrammingError as exc:  # wrong number of bindings, several statements, ...
        raise ToolError(f"SQL error: {exc}", retryable=False) from None
    except sqlite3.Error as exc:  # constraint violations, corrupt files, ...
        raise ToolError(f"SQL error ({type(exc).__name__}): {exc}", retryable=False) from None
    finally:
        conn.close()


@tool(name="sql", read_only=lambda args: not args.get("write"))
async def sql(
    ctx: ToolContext,
    path: str,
    query: str,
    params: list[SqlParam] | dict[str, SqlParam] | None = None,
    write: bool = False,
    create: bool = False,
    max_rows: Annotated[int, Field(ge=0)] = 10_000,
    busy_timeout: Annotated[float, Field(ge=0)] = 5.0,
) -> SqlResult:
    """Run one SQL statement on a SQLite database file and return its rows.

    The database is opened read-only unless `write` is true; values are bound from `params`
    (never paste values into `query`).

    Args:
        path: Path of the SQLite database file.
        query: One SQL statement, with ? or :name placeholders for values.
        params: Values for the placeholders: a list for ?, an object for :name.
        write: Open the database for writing (INSERT, UPDATE, CREATE TABLE, ...).
        create: Create the database file if it does not exist (needs write=true).
        max_rows: Most rows returned; `truncated` tells whether more were available.
        busy_timeout: Seconds to wait for another connection's lock before failing.
    """
    if create and not write:
        raise ToolError("create=true needs write=true", retryable=False)
    cancelled = threading.Event()
    bound: Any = params if params is not None else ()
    work = asyncio.ensure_future(
        asyncio.to_thread(_run, cancelled, path, query, bound, write, create, max_rows, busy_timeout)
    )
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # A thread cannot be killed: ask SQLite to abort the statement, then wait for that.
        cancelled.set()
        ctx.logger.debug("sql: cancelled; interrupting the statement on %s", path)
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: the cancellation is what the caller gets
        raise
