"""Durable runs: an append-only journal of every run, and resume.

- ``backend``: the small interface a storage engine implements, and how a location
  (a path, ``sqlite:///…``, ``postgresql://…``) picks one.
- ``schema`` and ``sqlite``: the SQLite file (the default): tables, format version, rows.
- ``pgschema`` and ``postgres``: a PostgreSQL database a team shares (the ``postgres``
  extra): migrations, leases, owner-fenced commits, reconnecting.
- ``queue``: the run queue in a PostgreSQL journal (``stepweave submit`` / ``worker``).
- ``writer``: ``RunRecorder``, group commit on a writer thread (any backend).
- ``reader``: the run list and one run rebuilt from its events (any backend).
- ``store``: ``Journal``, the handle passed to ``Orchestrator(journal=...)``.

See ``docs/durability.md`` for how resume works and how tools use idempotency keys, and
``docs/scale.md`` for the team journal and workers.
"""

from .reader import RunHistory, RunRecord
from .schema import FORMAT_VERSION, default_path
from .store import Journal

__all__ = ["FORMAT_VERSION", "Journal", "RunHistory", "RunRecord", "default_path"]
