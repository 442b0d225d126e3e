"""The one interface the journal's storage engines implement, and how a location picks one.

Everything that makes the journal a journal stays above this interface: group commit and
the durability barrier (``writer.RunRecorder``), rebuilding a run from its rows and the
resume rules (``reader``), liveness of a run's owner. A backend only stores and returns
rows: register or claim a run, append one batch, read a run's rows, list and prune.

- ``sqlite``: one file on one machine (the default: a path or ``sqlite:///path``).
- ``postgres``: a PostgreSQL database a team shares (``postgresql://user@host:port/db``),
  which also holds the run queue that ``stepweave worker`` claims from.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .codec import Blob

__all__ = [
    "ACTIVE",
    "Backend",
    "RunEnd",
    "RunRows",
    "RunStart",
    "RunWriter",
    "is_postgres_url",
    "owner_alive",
    "owner_id",
    "redact_url",
    "sqlite_path",
]

#: Runs being written by this process right now, as (journal key, run id): their owner
#: is this process, and they are live.
ACTIVE: set[tuple[str, str]] = set()


def owner_id() -> str:
    """``host:pid`` of this process, stored with a running run to tell live from crashed."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def sqlite_path(location: str | os.PathLike[str]) -> Path:
    """A path, or the path in a ``sqlite:///relative`` / ``sqlite:////absolute`` URL."""
    text = os.fspath(location)
    if text.startswith("sqlite://"):
        rest = text[len("sqlite://") :]
        if not rest.startswith("/"):
            raise ValueError(f"{text!r}: a SQLite journal URL is sqlite:///PATH (three slashes)")
        text = rest[1:]
    return Path(text).expanduser()


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``: what messages and logs may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class RunStart:
    """A new run's row and its first batch (the graph), written in one transaction."""

    run_id: str
    name: str | None
    started_at: float
    tasks_total: int
    meta: str  # JSON
    graph_batch: str  # JSON array holding the run_started record
    owner: str | None  # None: queued, for a worker to claim


@dataclass(frozen=True, slots=True)
class RunEnd:
    status: str
    ended_at: float
    error: str | None
    tasks_total: int
    tasks_done: int


@dataclass(frozen=True, slots=True)
class RunRows:
    """What the reader needs to rebuild one run."""

    row: tuple[Any, ...]  # the runs columns, in reader.RUN_COLUMNS order
    alive: bool
    batches: list[tuple[int, str]]  # (seq, JSON array), in order
    blobs: dict[str, bytes]  # large outputs by sha256


class RunWriter(Protocol):
    """One run's connection, used only by its recorder's writer thread."""

    def register(self, start: RunStart) -> None:
        """Insert a new run (``JournalError`` if its id is taken)."""

    def claim(self, run_id: str, previous_owner: str | None) -> int:
        """Take the run over if its owner is still ``previous_owner`` (compare-and-set);
        ``ResumeError`` otherwise. Returns the last batch number written."""

    def append(
        self,
        run_id: str,
        seq: int,
        batch: str,
        blobs: Sequence[Blob],
        done: int,
        added: int,
        end: RunEnd | None,
    ) -> None:
        """Commit one batch (and its blobs, counters or end) in one transaction."""

    def close(self) -> None: ...


class Backend(Protocol):
    """Where runs are stored. Every message names ``where`` (never a password)."""

    #: Shown in messages: the file, or the URL without its password.
    where: str
    #: Identifies this journal in ``ACTIVE``.
    key: str

    def exists(self) -> bool:
        """Whether there is a journal here already (reading never creates one)."""

    def check(self) -> None:
        """Create the journal if missing and check its format; raise if unusable."""

    def writer(self) -> RunWriter:
        """A connection for one run's writer thread (opened, format checked)."""

    def list_rows(self, limit: int | None) -> list[tuple[tuple[Any, ...], bool]]:
        """(runs row, whether its owner is alive), newest first."""

    def read(self, run_id: str) -> RunRows | None:
        """One run's rows, or None if there is no such run."""

    def prune(self, cutoff: float) -> list[str]:
        """Delete runs started before ``cutoff`` whose owner is not alive."""


def owner_alive(key: str, run_id: str, owner: str | None) -> bool:
    """Whether the process that owns a running run still exists, judged from this host.

    A process on another machine cannot be asked: it is assumed alive (a backend with
    leases judges by the lease instead), so a run is never stolen from a live owner.
    """
    if owner is None:
        return False
    host, _, pid_text = owner.rpartition(":")
    me = owner_id()
    if owner == me:
        return (key, run_id) in ACTIVE
    if host != me.rpartition(":")[0]:
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True
