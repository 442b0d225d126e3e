"""``sql``: one parameterised statement against a SQLite file, read-only unless asked."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError
from ..threads import run_sync
from ._sql_policy import Authorizer, database_path

__all__ = ["DEFAULT_MAX_RESULT_BYTES", "SqlResult", "SqlValue", "sql"]

#: A value SQLite stores: NULL, INTEGER, REAL, TEXT or BLOB.
SqlValue = int | float | str | bytes | None
SqlParam = int | float | str | bool | None

#: How many SQLite virtual-machine steps pass between checks for cancellation.
_PROGRESS_STEPS = 1000
#: Default cap on the bytes of a result (and on any one value SQLite makes).
DEFAULT_MAX_RESULT_BYTES = 10 * 1024 * 1024
#: Lowest SQLITE_LIMIT_LENGTH set, whatever max_bytes says: the schema must still load.
_MIN_LENGTH_LIMIT = 1024 * 1024
#: setlimit takes a C int (SQLite lowers it to its own compile-time maximum anyway).
_INT_MAX = 2**31 - 1
#: errno values that mean "too many open files" (per process, and system-wide).
_OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE})


class SqlResult(BaseModel):
    """The outcome of one SQL statement."""

    model_config = ConfigDict(ser_json_bytes="base64")

    columns: list[str] = Field(description="Result column names in order (empty when there are no rows).")
    rows: list[dict[str, SqlValue]] = Field(description="Result rows as column-name to value mappings.")
    rowcount: int = Field(
        description="Rows changed by INSERT/UPDATE/DELETE; for other statements, the rows returned."
    )
    truncated: bool = Field(description="Whether rows were left out to stay within max_rows or max_bytes.")
    lastrowid: int | None = Field(description="Rowid of the last inserted row (write mode), else null.")
    duration_s: float = Field(description="Seconds spent running the statement.")


def _database_uri(path: Path, mode: str) -> str:
    # as_uri() percent-encodes '?', '#' and '%' so they cannot be read as URI syntax.
    return f"{path.as_uri()}?mode={mode}"


def _value_size(value: SqlValue) -> int:
    """Bytes a value adds to the result (numbers and NULL count 8, like SQLite's storage)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", errors="replace"))
    return 8


def _out_of_files(path: Path) -> bool:
    """Whether SQLite's "unable to open" was really the process running out of descriptors."""
    try:
        os.close(os.open(path if path.exists() else path.parent, os.O_RDONLY))
    except OSError as exc:
        return exc.errno in _OUT_OF_FILES
    return False


def _fetch(
    cursor: sqlite3.Cursor, columns: list[str], max_rows: int, max_bytes: int, drain: bool
) -> tuple[list[dict[str, SqlValue]], bool]:
    """Rows up to ``max_rows`` and ``max_bytes``, fetched one at a time; and whether some were left out.

    Counting while fetching keeps memory near ``max_bytes`` however big the result. With
    ``drain``, the statement still runs to the end (an ``INSERT ... RETURNING`` must not
    stop half way); the rows past the caps are dropped as they come.
    """
    rows: list[dict[str, SqlValue]] = []
    name_bytes = sum(len(c.encode("utf-8", errors="replace")) for c in columns)
    total = 0
    for row in cursor:
        size = name_bytes + sum(_value_size(v) for v in row)
        if len(rows) >= max_rows or total + size > max_bytes:
            if not rows and max_rows > 0:
                raise ToolError(
                    f"the first row of the result is {size} bytes, over max_bytes={max_bytes}; "
                    "select fewer or smaller columns, or raise max_bytes",
                    retryable=False,
                )
            if drain:
                for _ in cursor:
                    pass
            return rows, True
        total += size
        rows.append(dict(zip(columns, row, strict=True)))
    return rows, False


def _query(
    conn: sqlite3.Connection,
    authorizer: Authorizer,
    cancelled: threading.Event,
    query: str,
    params: list[SqlParam] | dict[str, SqlParam],
    write: bool,
    max_rows: int,
    max_bytes: int,
    started: float,
) -> SqlResult:
    # A non-zero return aborts the running statement ("interrupted").
    conn.set_progress_handler(lambda: int(cancelled.is_set()), _PROGRESS_STEPS)
    # No single value (nor one SQLite builds on the way, like zeroblob(900000000)) may be
    # bigger than the result may be; small caps keep a floor so the schema still loads.
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, min(max(max_bytes, _MIN_LENGTH_LIMIT), _INT_MAX))
    # Views and triggers stored in the file may only call functions a query could call.
    conn.execute("PRAGMA trusted_schema = OFF")
    if not write:
        # Belt and braces: mode=ro covers the file, query_only also covers ATTACHed ones.
        conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(authorizer)
    with conn:  # commits on success, rolls back on error
        cursor = conn.execute(query, params)
        columns = [d[0] for d in cursor.description or ()]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ToolError(
                f"result has duplicate column names {duplicates}; give them distinct names with AS",
                retryable=False,
            )
        rows: list[dict[str, SqlValue]] = []
        truncated = False
        if columns:
            rows, truncated = _fetch(cursor, columns, max_rows, max_bytes, drain=write)
    rowcount = cursor.rowcount if cursor.rowcount >= 0 and not columns else len(rows)
    return SqlResult(
        columns=columns,
        rows=rows,
        rowcount=rowcount,
        truncated=truncated,
        lastrowid=cursor.lastrowid if write else None,
        duration_s=time.monotonic() - started,
    )


def _sql_error(exc: sqlite3.Error, db_path: Path, max_bytes: int, authorizer: Authorizer) -> ToolError:
    """The ``ToolError`` a failed statement becomes: permanent, except a locked database."""
    message = str(exc)
    where = str(db_path)
    if authorizer.denied is not None:  # a refusal always fails the statement
        return ToolError(f"SQL refused on {where!r}: {authorizer.denied}", retryable=False)
    if getattr(exc, "sqlite_errorname", None) == "SQLITE_TOOBIG":
        return ToolError(
            f"a value the query made or returned is bigger than max_bytes={max_bytes} "
            f"(SQLite: {message}); select less, or raise max_bytes",
            retryable=False,
        )
    if isinstance(exc, sqlite3.OperationalError):
        if "readonly" in message or "read-only" in message or "query_only" in message:
            return ToolError(
                f"database {where!r} is opened read-only ({message}); pass write=true to modify it",
                retryable=False,
            )
        if "locked" in message or "busy" in message:
            return ToolError(f"database {where!r}: {message}")  # transient
        return ToolError(f"SQL error: {message}", retryable=False)
    if isinstance(exc, sqlite3.ProgrammingError):  # wrong number of bindings, several statements, ...
        return ToolError(f"SQL error: {message}", retryable=False)
    return ToolError(f"SQL error ({type(exc).__name__}): {message}", retryable=False)  # constraints, ...


def _run(
    cancelled: threading.Event,
    path: str,
    query: str,
    params: list[SqlParam] | dict[str, SqlParam],
    write: bool,
    create: bool,
    max_rows: int,
    max_bytes: int,
    busy_timeout: float,
) -> SqlResult:
    db_path = database_path(path)
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
        if _out_of_files(db_path):  # back-pressure: another attempt, later, may succeed
            raise ToolError(
                f"cannot open SQLite database {str(db_path)!r}: too many open files in this process "
                "(EMFILE); lower max_concurrency or raise the open-file limit (ulimit -n)"
            ) from None
        raise ToolError(f"cannot open SQLite database {str(db_path)!r}: {exc}", retryable=False) from None
    authorizer = Authorizer(write=write)
    out_of_memory = False
    try:
        return _query(conn, authorizer, cancelled, query, params, write, max_rows, max_bytes, started)
    except MemoryError:
        # Leave the handler first: the traceback holds the frames that hold the rows.
        out_of_memory = True
    except sqlite3.Error as exc:
        raise _sql_error(exc, db_path, max_bytes, authorizer) from None
    finally:
        conn.close()
    assert out_of_memory
    raise ToolError(
        f"ran out of memory building the result of a query on {str(db_path)!r}; lower max_rows or max_bytes",
        retryable=False,
    )


@tool(name="sql", read_only=lambda args: not args.get("write"))
async def sql(
    ctx: ToolContext,
    path: str,
    query: str,
    params: list[SqlParam] | dict[str, SqlParam] | None = None,
    write: bool = False,
    create: bool = False,
    max_rows: Annotated[int, Field(ge=0)] = 10_000,
    max_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_RESULT_BYTES,
    busy_timeout: Annotated[float, Field(ge=0)] = 5.0,
) -> SqlResult:
    """Run one SQL statement on a SQLite database file and return its rows.

    The database is opened read-only unless `write` is true; values are bound from `params`
    (never paste values into `query`). Read-only statements cannot ATTACH, VACUUM or change
    settings; no statement may call functions that load code or touch files. When
    $STEPWEAVE_FILE_ROOT is set, the database (and any ATTACHed file) must be inside it.

    Args:
        path: Path of the SQLite database file (not a file: URI); relative to
            $STEPWEAVE_FILE_ROOT when that is set, else to the working directory.
        query: One SQL statement, with ? or :name placeholders for values.
        params: Values for the placeholders: a list for ?, an object for :name.
        write: Open the database for writing (INSERT, UPDATE, CREATE TABLE, ...).
        create: Create the database file if it does not exist (needs write=true).
        max_rows: Most rows returned; `truncated` tells whether more were available.
        max_bytes: Most bytes of values (and column names) returned; rows past it are left
            out and `truncated` is set. A value or row bigger than this alone fails the call.
        busy_timeout: Seconds to wait for another connection's lock before failing.
    """
    if create and not write:
        raise ToolError("create=true needs write=true", retryable=False)
    cancelled = threading.Event()
    bound: Any = params if params is not None else ()
    work = asyncio.ensure_future(
        run_sync(  # the run's tool threads
            functools.partial(
                _run, cancelled, path, query, bound, write, create, max_rows, max_bytes, busy_timeout
            )
        )
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
