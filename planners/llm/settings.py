"""The planner's policy, fixed at construction and shared by its sessions."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import Target

from .usage import Pricing

__all__ = ["PlannerSettings"]


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """How a planner plans; see ``LLMPlanner`` for what each field means."""

    stream: bool = True
    max_repairs: int = 2
    max_replans: int = 2
    result_limit: int = 2000
    instructions: str = ""
    pricing: Pricing | None = None
    #: Where every planned task runs (the model plans what, not where).
    target: Target = "local"

    def __post_init__(self) -> None:
        for name in ("max_repairs", "max_replans"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.result_limit < 100:
            raise ValueError(f"result_limit must be >= 100 characters, got {self.result_limit}")
