"""What a ``sql`` statement may do: an SQLite authorizer with allowlists of functions and pragmas.

SQLite asks the authorizer about every action while it compiles a statement. The policy:

- Functions: only the built-in ones listed in ``SAFE_FUNCTIONS`` (an allowlist, so a
  function a newer SQLite adds is refused until someone reviews it). ``load_extension``,
  ``fts3_tokenizer`` and the like are not on it.
- ``ATTACH`` (and ``VACUUM``, which SQLite compiles as an ``ATTACH`` of its target):
  refused on a read-only connection, since it can create a file anywhere; on a writable
  one, refused for URI file names and for files outside ``$STEPWEAVE_FILE_ROOT`` when set.
- Pragmas: read-only connections may only read (``READ_PRAGMAS`` with any argument, the
  settings in ``SETTING_PRAGMAS`` without a value); writable ones may use any pragma except
  the few that change the whole process (heap limits, the temporary directory).

Data writes on a read-only connection are stopped by SQLite itself (``mode=ro`` and
``PRAGMA query_only``), which gives the clearer "readonly database" error.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import ToolError
from ._files import FILE_ROOT_ENV, resolve_in_root

__all__ = ["READ_PRAGMAS", "SAFE_FUNCTIONS", "SETTING_PRAGMAS", "Authorizer", "database_path"]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Built-in SQL functions a statement may call: core, date and time, math, JSON, window
#: and aggregate functions, and the full-text search helpers. Nothing that touches files,
#: loads code or takes pointers.
SAFE_FUNCTIONS = _names(
    """
    -> ->> abs acos acosh asin asinh atan atan2 atanh avg bm25 ceil ceiling changes char
    coalesce concat concat_ws cos cosh count cume_dist current_date current_time
    current_timestamp date datetime degrees dense_rank exp first_value floor format glob
    group_concat hex highlight ifnull iif instr json json_array json_array_length
    json_error_position json_extract json_group_array json_group_object json_insert
    json_object json_patch json_pretty json_quote json_remove json_replace json_set json_type
    json_valid jsonb jsonb_array jsonb_extract jsonb_group_array jsonb_group_object
    jsonb_insert jsonb_object jsonb_patch jsonb_remove jsonb_replace jsonb_set julianday lag
    last_insert_rowid last_value lead length like likelihood likely ln log log10 log2 lower
    ltrim match matchinfo max min mod nth_value ntile nullif octet_length offsets
    percent_rank pi pow power printf quote radians random randomblob rank replace round
    row_number rtrim sign sin sinh snippet soundex sqlite_source_id sqlite_version sqrt
    strftime string_agg substr substring subtype sum tan tanh time timediff total
    total_changes trim trunc typeof unhex unicode unistr unixepoch unlikely upper zeroblob
    """
)

#: Pragmas that only report; their argument, if any, names a table, index or schema.
READ_PRAGMAS = _names(
    """
    collation_list compile_options database_list foreign_key_check foreign_key_list
    function_list index_info index_list index_xinfo integrity_check module_list pragma_list
    quick_check table_info table_list table_xinfo
    """
)

#: Settings a read-only connection may read (never change: ``PRAGMA user_version = 42``).
SETTING_PRAGMAS = _names(
    """
    application_id auto_vacuum automatic_index busy_timeout cache_size case_sensitive_like
    data_version encoding foreign_keys freelist_count journal_mode journal_size_limit
    locking_mode max_page_count page_count page_size query_only recursive_triggers
    schema_version secure_delete synchronous temp_store trusted_schema user_version
    wal_autocheckpoint
    """
)

#: Pragmas that change the whole process, not one connection (the journal shares it).
_PROCESS_PRAGMAS = frozenset({"hard_heap_limit", "soft_heap_limit", "temp_store_directory"})


class Authorizer:
    """The ``set_authorizer`` callback of one connection; ``denied`` says why it last refused."""

    def __init__(self, *, write: bool) -> None:
        self.write = write
        self.denied: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None
    ) -> int:
        reason = self._check(action, arg1, arg2)
        if reason is None:
            return sqlite3.SQLITE_OK
        self.denied = reason
        return sqlite3.SQLITE_DENY

    def _check(self, action: int, arg1: str | None, arg2: str | None) -> str | None:
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            if name not in SAFE_FUNCTIONS:
                return f"function {name}() is not allowed in the sql tool"
        elif action == sqlite3.SQLITE_ATTACH:
            return self._check_attach(arg1 or "")
        elif action == sqlite3.SQLITE_DETACH:
            if not self.write:
                return "DETACH is not allowed on a read-only connection"
        elif action == sqlite3.SQLITE_PRAGMA:
            return self._check_pragma((arg1 or "").lower(), arg2)
        return None

    def _check_attach(self, filename: str) -> str | None:
        what = "ATTACH or VACUUM"
        if not self.write:
            return f"{what} is not allowed on a read-only connection (it can create files); pass write=true"
        if filename in ("", ":memory:"):  # VACUUM's own temporary database, or memory
            return None
        if filename.lower().startswith("file:"):
            return f"{what} of a URI ({filename!r}) is not allowed; give a file path"
        if os.environ.get(FILE_ROOT_ENV):
            # SQLite opens a relative name from the working directory: check that file.
            try:
                resolve_in_root(os.path.abspath(filename))
            except ToolError as exc:
                return f"{what}: {exc}"
        return None

    def _check_pragma(self, name: str, value: str | None) -> str | None:
        if name in _PROCESS_PRAGMAS:
            return f"PRAGMA {name} is not allowed (it changes the whole process)"
        if self.write or name in READ_PRAGMAS or (name in SETTING_PRAGMAS and value is None):
            return None
        if name in SETTING_PRAGMAS:
            return f"PRAGMA {name} = {value} changes a setting; pass write=true"
        return f"PRAGMA {name} is not allowed on a read-only connection; pass write=true"


def database_path(path: str) -> Path:
    """The file ``path`` names, confined to ``$STEPWEAVE_FILE_ROOT`` when that is set.

    Without a root, a relative path is taken from the working directory (as before the
    file tools' root existed; workflows keep databases in /tmp and elsewhere). URIs are
    refused either way: ``mode``, ``vfs`` and friends are the tool's to choose.
    """
    if not path or "\0" in path:
        raise ToolError(f"invalid database path {path!r}", retryable=False)
    if path.lower().startswith("file:"):
        raise ToolError(f"database path {path!r} is a URI; give a file path", retryable=False)
    if os.environ.get(FILE_ROOT_ENV):
        return resolve_in_root(path)
    return Path(path).expanduser().absolute()
