"""Running out of file descriptors (EMFILE) is back-pressure: a retryable error, not a lost item.

The child process lowers its own RLIMIT_NOFILE, uses up every descriptor, calls the tools,
then frees the descriptors and calls them again: the first calls must fail retryably with a
clear message, the second succeed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

CHILD = r"""
import asyncio, json, os, resource, sys
from tools import ToolError
from tools.builtin import http, shell, sql

url, db = sys.argv[1], sys.argv[2]
CALLS = {
    "shell": lambda: shell.invoke({"argv": ["true"]}),
    "http": lambda: http.invoke({"url": url, "timeout": 10}),
    "sql": lambda: sql.invoke({"path": db, "query": "SELECT 1 AS one"}),
}

async def call_all():
    outcome = {}
    for name, call in CALLS.items():
        try:
            await call()
            outcome[name] = "ok"
        except ToolError as exc:
            outcome[name] = {"message": str(exc), "retryable": exc.retryable}
    return outcome

async def main():
    warm = await call_all()  # lazy imports (the thread pool, httpx parts) happen here
    # The event loop is running (it holds its own descriptors); now use up the rest.
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    starved = await call_all()
    for fd in hog:
        os.close(fd)
    print(json.dumps({"warm": warm, "starved": starved, "freed": await call_all()}))

asyncio.run(main())
"""


def test_too_many_open_files_is_retryable_back_pressure(http_server: str, tmp_path: Path) -> None:
    db = tmp_path / "one.db"
    sqlite3.connect(db).close()
    env = {**os.environ, "STEPWEAVE_HTTP_ALLOW": "127.0.0.1"}
    env.pop("STEPWEAVE_FILE_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, f"{http_server}/json", str(db)],
        capture_output=True, text=True, timeout=50, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    outcome: dict[str, Any] = json.loads(proc.stdout)
    assert outcome["warm"] == {"shell": "ok", "http": "ok", "sql": "ok"}
    for tool, error in outcome["starved"].items():
        assert error != "ok", f"{tool} worked without a free descriptor?"
        assert error["retryable"] is True, (tool, error)
        assert "too many open files" in error["message"].lower(), (tool, error)
        assert "EMFILE" in error["message"], (tool, error)
    assert outcome["freed"] == {"shell": "ok", "http": "ok", "sql": "ok"}
