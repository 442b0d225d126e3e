"""The pieces of the scheduler that are not its hot path.

``orchestrator/scheduler.py`` keeps readiness, dispatch and ending together, tuned as one
loop. What lives here is either a public type users configure runs with, or a gate that
only some tasks pass through, so its cost never reaches the common task:

- ``policy``: ``RunPolicy`` and the public policy types (``FailurePolicy``, ``Approver``,
  ``Replanner``, ``ReplanRequest``).
- ``resume``: ``ResumePoint``, where a resumed run picks up.
- ``node``: ``Node``, the run-time state of one task (package-internal).
- ``gates``: the slow attempt path, composed of ``approval``, ``durability`` (the
  write-ahead ``Barrier``) and ``retries`` (tenacity).
- ``timeouts``: a per-attempt timeout; ``limits``: concurrency caps per tool and per run.
"""

from __future__ import annotations

from .durability import Barrier
from .policy import Approver, FailurePolicy, Replanner, ReplanRequest, RunPolicy
from .resume import ResumePoint

__all__ = ["Approver", "Barrier", "FailurePolicy", "ReplanRequest", "Replanner", "ResumePoint", "RunPolicy"]
