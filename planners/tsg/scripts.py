"""Scripts inside a command: sed scripts, awk programs and SQL, read for what can write.

Each function returns ``None`` when the script only reads, else why it may write. They
parse just enough of each language to find the commands that write or run programs
(sed ``w``/``W``/``e`` and ``s///w``/``s///e``; awk ``system()``, pipes and ``print >``;
SQL statements other than queries, and functions such as ``writefile``), and call
anything they do not recognise a write.
"""

from __future__ import annotations

import re

from .options import words

__all__ = ["awk_writes", "sed_writes", "split_sql", "sql_writes", "sqlite_dot_writes"]


# -- sed -------------------------------------------------------------------------------------

_SED_SIMPLE = set("pPdDnNgGhHxz=F")


def _sed_delimited(script: str, index: int, delimiter: str) -> int:
    """Index after the ``delimiter`` that ends a regex/replacement starting at ``index``."""
    while index < len(script):
        char = script[index]
        if char == "\\":
            index += 2
            continue
        if char == "[" and delimiter != "[":
            end = index + 1
            if script[end : end + 1] == "^":
                end += 1
            if script[end : end + 1] == "]":
                end += 1
            close = script.find("]", end)
            if close >= 0 and "\n" not in script[index:close]:
                index = close + 1
                continue
        if char == delimiter:
            return index + 1
        index += 1
    raise ValueError("unterminated")


def _sed_address(script: str, index: int) -> int:
    if index < len(script) and script[index] in "0123456789":
        while index < len(script) and script[index] in "0123456789~":
            index += 1
    elif index < len(script) and script[index] == "$":
        index += 1
    elif index < len(script) and script[index] in "+~":
        index += 1
        while index < len(script) and script[index].isdigit():
            index += 1
    elif index < len(script) and script[index] == "/":
        index = _sed_delimited(script, index + 1, "/")
        while index < len(script) and script[index] in "IM":
            index += 1
    elif script.startswith("\\", index) and index + 1 < len(script):
        index = _sed_delimited(script, index + 2, script[index + 1])
        while index < len(script) and script[index] in "IM":
            index += 1
    return index


def _line_end(script: str, index: int) -> int:
    end = script.find("\n", index)
    return len(script) if end < 0 else end


def sed_writes(script: str) -> str | None:
    """Why a sed script may write a file or run a command, or None if it only prints."""
    index = 0
    try:
        while index < len(script):
            char = script[index]
            if char in " \t\n;}":
                index += 1
                continue
            if char == "#":
                index = _line_end(script, index)
                continue
            index = _sed_address(script, index)
            if script.startswith(",", index):
                index = _sed_address(script, index + 1)
            while script.startswith((" ", "\t", "!"), index):
                index += 1
            if index >= len(script):
                return "a sed address without a command"
            command = script[index]
            index += 1
            if command == "{" or command in _SED_SIMPLE:
                continue
            if command in "wW":
                return f"the sed command {command!r} writes a file"
            if command == "e":
                return "the sed command 'e' runs a command"
            if command in "sy":
                delimiter = script[index]
                index = _sed_delimited(script, index + 1, delimiter)
                index = _sed_delimited(script, index, delimiter)
                if command == "s":
                    flags = re.match(r"[gpiImMe0-9w]*", script[index:])
                    assert flags is not None
                    if "w" in flags.group(0):
                        return "the sed s///w flag writes a file"
                    if "e" in flags.group(0):
                        return "the sed s///e flag runs the result as a command"
                    index += len(flags.group(0))
                continue
            if command in "aicrR":  # text or a file to read: the rest of the line
                end = _line_end(script, index)
                while script[index:end].endswith("\\") and end < len(script):
                    end = _line_end(script, end + 1)
                index = end
                continue
            if command in ":btTv":
                match = re.match(r"[^;\n}]*", script[index:])
                index += len(match.group(0)) if match else 0
                continue
            if command in "qQlL":
                while index < len(script) and (script[index].isdigit() or script[index] == " "):
                    index += 1
                continue
            return f"unknown sed command {command!r}"
    except (ValueError, IndexError):
        return "a sed script the classifier cannot read"
    return None


# -- awk -------------------------------------------------------------------------------------

_AWK_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
#: A regex literal where one can start: after an operator or at the start of a pattern.
_AWK_REGEX = re.compile(r"(^|[(,~!{};&|\n]|&&|\|\||\bprint\b|\bprintf\b)(\s*)/(?:[^/\\\n]|\\.)+/")
_AWK_PRINT = re.compile(r"\bprintf?\b")


def awk_writes(program: str) -> str | None:
    """Why an awk program may write a file or run a command, or None if it only prints."""
    if re.search(r"@\s*(load|include|namespace)", program):
        return "awk @load/@include loads code the classifier cannot see"
    text = _AWK_STRING.sub('""', program)
    text = _AWK_REGEX.sub(lambda m: m.group(1) + m.group(2) + "//", text)
    if re.search(r"\bsystem\s*\(", text):
        return "awk system() runs a command"
    if re.search(r"(?<!\|)\|(?!\|)", text):
        return "an awk pipe (| getline, print | cmd, |&) runs a command"
    for match in _AWK_PRINT.finditer(text):
        depth = 0
        for char in text[match.end() :]:
            if char in "([":
                depth += 1
            elif char in ")]":
                depth -= 1
            elif char in ";}\n" and depth <= 0:
                break
            elif char == ">" and depth <= 0:
                return "awk print > FILE writes a file"
    return None


# -- SQL -------------------------------------------------------------------------------------

_SQL_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]")
_SQL_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_SQL_WRITES = re.compile(
    r"\b(insert|update|delete|replace(?!\s*\()|create|drop|alter|attach|detach|vacuum|reindex|truncate|"
    r"grant|revoke|merge|upsert|copy|call|into|outfile|dumpfile)\b",
    re.IGNORECASE,
)
_SQL_WRITING_FUNCTIONS = re.compile(
    r"\b(writefile|load_extension|edit|fts3_tokenizer|lo_\w+|pg_terminate_backend|pg_cancel_backend|"
    r"pg_reload_conf|pg_rotate_logfile|pg_switch_wal|pg_create_\w+|pg_drop_\w+|pg_promote|pg_wal_replay_\w+|"
    r"pg_start_backup|pg_stop_backup|pg_backup_\w+|pg_file_\w+|pg_logical_emit_message|pg_advisory\w*|"
    r"pg_log_backend_memory_contexts|pg_replication_origin_\w+|pg_notify|set_config|nextval|setval|"
    r"dblink\w*|get_lock|release_lock|sys_exec|sys_eval)\s*\(",
    re.IGNORECASE,
)
_READ_FIRST = frozenset({"select", "with", "explain", "values", "table", "show", "describe", "desc"})
_PRAGMA = re.compile(r"^pragma\s+(?:\w+\.)?(\w+)\s*(\(\s*[\w\"'.]*\s*\))?\s*$", re.IGNORECASE)
_PRAGMA_ARGUMENT = words(
    "table_info table_xinfo index_list index_info index_xinfo foreign_key_list foreign_key_check "
    "integrity_check quick_check table_list"
)
_PRAGMA_PLAIN = _PRAGMA_ARGUMENT | words(
    "page_count page_size user_version schema_version journal_mode freelist_count encoding function_list "
    "pragma_list module_list collation_list database_list compile_options data_version application_id "
    "cache_size auto_vacuum foreign_keys synchronous busy_timeout max_page_count mmap_size locking_mode "
    "temp_store wal_autocheckpoint secure_delete recursive_triggers cell_size_check query_only"
)


def split_sql(text: str) -> list[str]:
    """Statements of a SQL text (``;`` outside quotes and comments), comments removed."""
    statements: list[str] = []
    current: list[str] = []
    position = 0
    pattern = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|;", re.DOTALL)
    for match in pattern.finditer(text):
        current.append(text[position : match.start()])
        token = match.group(0)
        if token == ";":
            statements.append("".join(current))
            current = []
        elif token.startswith(("--", "/*")):
            current.append(" ")
        else:
            current.append(token)
        position = match.end()
    current.append(text[position:])
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def sql_writes(text: str) -> str | None:
    """Why a SQL text may change anything, or None if every statement is a read-only query."""
    statements = split_sql(text)
    if not statements:
        return "an empty SQL text"
    for statement in statements:
        bare = _SQL_QUOTED.sub("''", statement)
        first = bare.split(None, 1)[0].lower() if bare.split() else ""
        if first == "pragma":
            match = _PRAGMA.match(bare)
            name = match.group(1).lower() if match else ""
            if not match or name not in _PRAGMA_PLAIN or (match.group(2) and name not in _PRAGMA_ARGUMENT):
                return "a PRAGMA that sets a value (or one the classifier does not know)"
            continue
        if first not in _READ_FIRST:
            return f"SQL {first.upper() or '(empty)'} statement writes or is unknown"
        found = _SQL_WRITES.search(bare)
        if found:
            return f"SQL with {found.group(1).upper()} writes or is unknown"
        function = _SQL_WRITING_FUNCTIONS.search(bare)
        if function:
            return f"the SQL function {function.group(1)}() has side effects"
    return None


_SQLITE_READ_DOTS = words(
    ".tables .table .schema .indexes .indices .dbinfo .databases .show .help .headers .header .mode "
    ".separator .nullvalue .width .timer .stats .eqp .echo .explain .fullschema .changes .print .bail "
    ".timeout .dump .sha3sum .lint .version .quit .exit .limit .dbconfig"
)


def sqlite_dot_writes(text: str) -> str | None:
    """Why a sqlite3 dot-command (``.shell``, ``.output`` …) may write, or None for ``.tables`` and the like."""
    for line in text.splitlines() or [text]:
        line = line.strip()
        if not line:
            continue
        if not line.startswith("."):
            reason = sql_writes(line)
            if reason:
                return reason
            continue
        name = line.split(None, 1)[0].lower()
        if name not in _SQLITE_READ_DOTS:
            return f"the sqlite3 dot-command {name} writes files, runs commands or is unknown"
        if name in (".dbconfig", ".limit", ".timeout") and len(line.split()) > 2:
            return f"{name} with a value changes a setting"
    return None
