"""``ResumePoint``: where a resumed run picks up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..result import TaskError, TaskResult

__all__ = ["ResumePoint"]


@dataclass(slots=True)
class ResumePoint:
    """Where a resumed run picks up, as read from the journal (and the in-flight policy)."""

    #: Outcomes that stand (succeeded or skipped tasks, for_each items included).
    restored: Mapping[str, TaskResult] = field(default_factory=dict)
    #: Attempts already made by tasks that will run again (numbering continues after them).
    attempts: Mapping[str, int] = field(default_factory=dict)
    #: In-flight tasks failed by the in-flight policy instead of being repeated.
    interrupted: dict[str, TaskError] = field(default_factory=dict)
    #: In-flight tasks dispatched again with the same idempotency key.
    retried: tuple[str, ...] = ()
