"""Token and time accounting for planner and joiner calls.

Each call to the model is one ``CallUsage``; a ``Usage`` sums the calls of a planner, an
``ask`` or a run. Servers that do not report token counts (some local ones) leave the
counts at zero and ``reported`` false; ``to_dict`` and ``describe`` then say "unknown"
(``None``), so a total is never silently an undercount.
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
    #: The completion-token cap sent (``None``: none, the server's default).
    max_tokens: int | None = None
    #: Why the answer ended, as the server said (``stop``, ``length``); ``None`` if it did not.
    finish_reason: str | None = None
    #: What broke the stream (it ended without ``finish_reason``, the connection dropped).
    transport_error: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens if self.reported else None,
            "completion_tokens": self.completion_tokens if self.reported else None,
            "seconds": round(self.seconds, 6),
            "first_token_seconds": (
                None if self.first_token_seconds is None else round(self.first_token_seconds, 6)
            ),
            "response_format": self.response_format,
            "retries": self.retries,
            "reported": self.reported,
            "max_tokens": self.max_tokens,
            "finish_reason": self.finish_reason,
            "transport_error": self.transport_error,
        }

    def describe(self) -> str:
        """``plan call (json_object): 812+143 tokens, first token 1.20s, 3.40s, 1 retry``."""
        tokens = (
            f"{self.prompt_tokens}+{self.completion_tokens} tokens" if self.reported else "tokens unknown"
        )
        parts = [f"{self.kind} call ({self.response_format or 'no format'}): {tokens}"]
        if self.first_token_seconds is not None:
            parts.append(f"first token {self.first_token_seconds:.2f}s")
        parts.append(f"{self.seconds:.2f}s")
        if self.retries:
            parts.append(f"{self.retries} {'retry' if self.retries == 1 else 'retries'}")
        if self.transport_error:
            parts.append("stream cut off")
        return ", ".join(parts)


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

    @property
    def unknown_calls(self) -> int:
        """Calls whose server reported no token counts (the totals leave them out)."""
        return sum(1 for c in self.calls if not c.reported)

    @property
    def retries(self) -> int:
        return sum(c.retries for c in self.calls)

    def describe_tokens(self) -> str:
        """``1200+300 tokens``, saying so when some or all counts are unknown."""
        if self.calls and self.unknown_calls == len(self.calls):
            return "tokens unknown (the server reports none)"
        text = f"{self.prompt_tokens}+{self.completion_tokens} tokens"
        if self.unknown_calls:
            text += f" ({self.unknown_calls} call(s) without token counts)"
        return text

    def by_kind(self, kind: CallKind) -> Usage:
        return Usage([c for c in self.calls if c.kind == kind], self.pricing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": [c.to_dict() for c in self.calls],
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "unknown_calls": self.unknown_calls,
            "retries": self.retries,
            "seconds": round(self.seconds, 6),
            "cost": self.cost,
        }
