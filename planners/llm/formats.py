"""How to ask a server for JSON, strongest first, and what each server turned out to accept.

1. ``json_schema``: OpenAI's structured outputs (strict when the schema allows it).
2. ``json_object`` with a ``schema``: llama.cpp's grammar-constrained JSON (its server
   answers HTTP 500 to ``json_schema``); other servers treat it as plain JSON mode.
3. ``prompt``: no ``response_format`` at all; the prompt alone asks for the JSON.

A server that rejects a format is asked again with the next one, and the one that worked
is remembered per server (base URL), so only the first call to a server pays for probing.
``ServerMemory.persistent()`` keeps that in a small JSON file in the user's cache
directory, so the next run (``stepweave ask`` uses it) does not probe again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

from openai import APIStatusError

from .schema import strict_schema

__all__ = ["FormatMode", "ServerMemory", "is_format_rejection", "response_format", "weaker"]


class FormatMode(StrEnum):
    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"


_ORDER = (FormatMode.JSON_SCHEMA, FormatMode.JSON_OBJECT, FormatMode.PROMPT)
#: Words in an error that mean "this server does not take that response_format".
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")


def weaker(mode: FormatMode) -> FormatMode | None:
    """The next format to try after ``mode`` was rejected, or ``None`` after ``prompt``."""
    index = _ORDER.index(mode)
    return _ORDER[index + 1] if index + 1 < len(_ORDER) else None


def response_format(mode: FormatMode, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` request field for ``mode`` (``None``: leave it out)."""
    if mode is FormatMode.JSON_SCHEMA:
        strict, feasible = strict_schema(schema)
        return {
            "type": "json_schema",
            "json_schema": {
                "name": name,
                "schema": strict if feasible else schema,
                "strict": feasible,
            },
        }
    if mode is FormatMode.JSON_OBJECT:
        return {"type": "json_object", "schema": schema}
    return None


def is_format_rejection(exc: APIStatusError, mode: FormatMode) -> bool:
    """Whether ``exc`` says the server cannot do ``mode`` (so a weaker format may work).

    llama.cpp answers 500 to ``json_schema``; OpenAI and vLLM answer 400 or 422 to a schema
    they cannot compile. Either way the message names the response format or the schema.
    A 500 that does not is an ordinary server error, retried as such.
    """
    if mode is FormatMode.PROMPT or exc.status_code not in (400, 422, 500, 501):
        return False
    text = f"{exc.message} {exc.body}".lower()
    return any(word in text for word in _FORMAT_WORDS)


#: Servers a cache file remembers; the least recently learned are forgotten first.
_MAX_REMEMBERED = 64
CACHE_FILE = "llm-servers.json"


class ServerMemory:
    """What each server (by base URL) accepted: its response format, and ``stream_options``.

    Shared by every planner in the process by default, as the servers are. With ``path``
    it is also kept in that file (read at start, rewritten whole when something is learned);
    an unreadable file is ignored, as a cache should be.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._formats: dict[str, FormatMode] = {}
        self._no_stream_options: set[str] = set()
        self.path = path
        if path is not None:
            self._load(path)

    @classmethod
    def persistent(cls) -> ServerMemory:
        """A memory kept in the user's cache directory (``platformdirs``), across runs."""
        import platformdirs

        return cls(platformdirs.user_cache_path("stepweave") / CACHE_FILE)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        servers = data.get("servers") if isinstance(data, dict) else None
        for server, entry in (servers or {}).items():
            if not isinstance(entry, dict):
                continue
            with contextlib.suppress(ValueError):
                if entry.get("format"):
                    self._formats[server] = FormatMode(entry["format"])
            if entry.get("stream_options") is False:
                self._no_stream_options.add(server)

    def _save(self) -> None:
        """Rewrite the file (atomically: a reader never sees half of it). Call with the lock held."""
        if self.path is None:
            return
        servers: dict[str, dict[str, Any]] = {}
        for server in list(self._formats) + sorted(self._no_stream_options - self._formats.keys()):
            entry: dict[str, Any] = {}
            if server in self._formats:
                entry["format"] = self._formats[server].value
            if server in self._no_stream_options:
                entry["stream_options"] = False
            servers[server] = entry
        kept = dict(list(servers.items())[-_MAX_REMEMBERED:])
        with contextlib.suppress(OSError):  # a cache that cannot be written is only a cache
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".llm-servers-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"version": 1, "servers": kept}, out, indent=1)
            os.replace(tmp, self.path)

    def format_for(self, server: str) -> FormatMode:
        with self._lock:
            return self._formats.get(server, FormatMode.JSON_SCHEMA)

    def remember_format(self, server: str, mode: FormatMode) -> None:
        with self._lock:
            self._formats.pop(server, None)  # re-inserted last: the most recently learned
            self._formats[server] = mode
            self._save()

    def stream_options_ok(self, server: str) -> bool:
        with self._lock:
            return server not in self._no_stream_options

    def remember_no_stream_options(self, server: str) -> None:
        with self._lock:
            self._no_stream_options.add(server)
            self._save()

    def forget(self, server: str | None = None) -> None:
        """Probe again: for one server, or all of them."""
        with self._lock:
            if server is None:
                self._formats.clear()
                self._no_stream_options.clear()
            else:
                self._formats.pop(server, None)
                self._no_stream_options.discard(server)
            self._save()


#: The process-wide memory planners use unless given their own.
SHARED_MEMORY = ServerMemory()
