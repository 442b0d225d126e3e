"""Durable runs: an append-only journal of every run in one SQLite file, and resume.

- ``schema``: the file, its tables, the format version check.
- ``writer``: ``RunRecorder``, group commit on a writer thread.
- ``reader``: the run list and one run rebuilt from its events.
- ``store``: ``Journal``, the handle passed to ``Orchestrator(journal=...)``.

See ``docs/durability.md`` for how resume works and how tools use idempotency keys.
"""

from .reader import RunHistory, RunRecord
from .schema import FORMAT_VERSION, default_path
from .store import Journal

__all__ = ["FORMAT_VERSION", "Journal", "RunHistory", "RunRecord", "default_path"]
