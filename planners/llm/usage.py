"""Token and time accounting for planner and joiner calls.

Each call to the model is one ``CallUsage``; a ``Usage`` sums the calls of a planner, an
``ask`` or a run. Servers that do not report token counts (some local ones) leave the
counts at zero and ``reported`` false, so a total is never silently an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CallKind", "CallUsage", "Pricing", "Usage"]

#: What a model call was for: the first plan, a repair of an invalid answer, a replan,
#: or the joiner's finish-or-replan decision.
CallKind = Literal["plan", "repair", "replan", "join"]


@dataclass(frozen=True, slots=True)
class Pricing:
    """Prices in currency units per million tokens, to turn usage into cost."""

    prompt_per_million: float
    completion_per_million: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.prompt_per_million + completion_tokens * self.completion_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class CallUsage:
    """One model call: tokens, wall time, how the JSON was requested and how often it was retried."""

    kind: CallKind
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Wall time from sending the request to the last byte, retries included.
    seconds: float = 0.0
    #: Wall time until the first content arrived (``None`` if none did).
    first_token_seconds: float | None = None
    #: ``json_schema``, ``json_object`` or ``prompt``: the response format that was used.
    response_format: str = ""
    #: Transient API errors retried before this call succeeded.
    retries: int = 0
    #: Whether the server reported the token counts.
    reported: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 6),
            "first_token_seconds": (
                None if self.first_token_seconds is None else round(self.first_token_seconds, 6)
            ),
            "response_format": self.response_format,
            "retries": self.retries,
            "reported": self.reported,
        }


@dataclass(slots=True)
class Usage:
    """The calls of a planner, an ``ask`` or a run, with their totals."""

    calls: list[CallUsage] = field(default_factory=list)
    pricing: Pricing | None = None

    @classmethod
    def of(cls, calls: Iterable[CallUsage], pricing: Pricing | None = None) -> Usage:
        return cls(list(calls), pricing)

    def add(self, call: CallUsage) -> None:
        self.calls.append(call)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.calls)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def seconds(self) -> float:
        """Time spent waiting for the model, summed over calls."""
        return sum(c.seconds for c in self.calls)

    @property
    def cost(self) -> float | None:
        """Cost under ``pricing``, or ``None`` when no pricing was given."""
        if self.pricing is None:
            return None
        return self.pricing.cost(self.prompt_tokens, self.completion_tokens)

    def by_kind(self, kind: CallKind) -> Usage:
        return Usage([c for c in self.calls if c.kind == kind], self.pricing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": [c.to_dict() for c in self.calls],
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "seconds": round(self.seconds, 6),
            "cost": self.cost,
        }
