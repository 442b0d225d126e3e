"""The planner's policy, fixed at construction and shared by its sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator import Target, Task

from .usage import Pricing

__all__ = ["DEFAULT_MAX_PLAN_BYTES", "DEFAULT_MAX_PLAN_TASKS", "Placement", "PlannerSettings"]

#: 512 KiB: about 130,000 tokens, beyond any model's longest answer; a real plan is a few KiB.
DEFAULT_MAX_PLAN_BYTES = 512 * 1024
#: Tasks in one plan (or replan); a model plan of more is a runaway, not a plan.
DEFAULT_MAX_PLAN_TASKS = 1000


class Placement(Protocol):
    """Where planned tasks run, decided per tool: over a fleet of devices, for instance.

    Asked at every plan, repair and replan, so it may follow a fleet that changes.
    """

    def target(self, tool: str) -> Target:
        """The target of a planned call of ``tool``."""
        ...

    def where(self, tool: str) -> str | None:
        """Where ``tool`` runs, for the prompt (``runs on lab-1 (site=lab)``), or ``None``."""
        ...

    def problem(self, task: Task) -> str | None:
        """Why ``task`` cannot run where it is placed now (the plan is then repaired), or ``None``."""
        ...


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
    #: Per-tool placement instead of ``target`` (tools of a device fleet), or ``None``.
    placement: Placement | None = None
    #: Caps on one model answer holding a plan (a plan is untrusted, unbounded input).
    max_plan_bytes: int = DEFAULT_MAX_PLAN_BYTES
    max_plan_tasks: int = DEFAULT_MAX_PLAN_TASKS
    #: Mark planned tasks that may change something ``needs_approval`` (plans are untrusted).
    require_approval: bool = True

    def __post_init__(self) -> None:
        for name in ("max_repairs", "max_replans"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_plan_bytes", "max_plan_tasks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.result_limit < 100:
            raise ValueError(f"result_limit must be >= 100 characters, got {self.result_limit}")
