"""Planner events: the model calls, rejected answers and joiner decisions of an ``ask``.

They subclass the engine's ``Event``, so one consumer (the CLI's live view, ``--json``)
handles them beside ``TaskAdded`` and ``TaskEnded``. ``LLMPlanner.ask_events`` yields both
kinds in order; the engine's own ``Run.events()`` does not carry these (yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from orchestrator import Event

from .schema import JoinDecision
from .usage import CallKind, CallUsage

if TYPE_CHECKING:
    from .result import AskResult

__all__ = [
    "AskEnded",
    "JoinerDecided",
    "PlanRejected",
    "PlannerCallEnded",
    "PlannerCallStarted",
    "PlannerRetrying",
]


@dataclass(slots=True, kw_only=True)
class PlannerCallStarted(Event):
    """A model call began (``call``: plan, repair, replan or join)."""

    kind: ClassVar[str] = "planner_call_started"
    call: CallKind


@dataclass(slots=True, kw_only=True)
class PlannerRetrying(Event):
    """A transient API error (rate limit, 5xx, timeout); the call is retried after ``delay``."""

    kind: ClassVar[str] = "planner_retrying"
    call: CallKind
    error: str
    delay: float


@dataclass(slots=True, kw_only=True)
class PlannerCallEnded(Event):
    """A model call ended: its tokens, time and response format."""

    kind: ClassVar[str] = "planner_call_ended"
    usage: CallUsage


@dataclass(slots=True, kw_only=True)
class PlanRejected(Event):
    """An answer had problems; a repair call follows while ``repairs_left`` > 0."""

    kind: ClassVar[str] = "plan_rejected"
    call: CallKind
    problems: list[str] = field(default_factory=list)
    repairs_left: int = 0


@dataclass(slots=True, kw_only=True)
class JoinerDecided(Event):
    """The joiner chose to finish (with the answer) or to replan (with the reason)."""

    kind: ClassVar[str] = "joiner_decided"
    decision: JoinDecision


@dataclass(slots=True, kw_only=True)
class AskEnded(Event):
    """The last event of ``ask_events``: the answer, the run and the usage."""

    kind: ClassVar[str] = "ask_ended"
    result: AskResult
