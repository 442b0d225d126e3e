"""What ``LLMPlanner.ask`` returns: the answer, the run that produced it, the plans and usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from orchestrator import RunResult, Task

from .context import to_plan_notation
from .schema import JoinDecision
from .usage import Usage

__all__ = ["AskResult", "PlanRecord"]


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """One plan: the first (``plan``) or a later one (``replan``), with the tasks it started."""

    kind: Literal["plan", "replan"]
    tasks: tuple[Task, ...]
    #: Repair calls this plan needed before it was valid.
    repairs: int = 0
    #: Why it was made: the joiner's reason, or the task failure, for a replan.
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "repairs": self.repairs,
            "tasks": [
                {"id": t.id, "tool": t.tool, "args": to_plan_notation(t.args), "deps": list(t.deps)}
                for t in self.tasks
            ],
        }


@dataclass(frozen=True, slots=True)
class AskResult:
    """The outcome of ``ask``.

    ``answer`` is the joiner's. ``run_result`` is the engine's account of every task; it
    may be ``failed`` although an answer was found (a tool failed and a replan worked
    around it): the answer is what ``ask`` is for, the run status is what happened.
    """

    request: str
    answer: str
    run_result: RunResult
    plans: tuple[PlanRecord, ...]
    decisions: tuple[JoinDecision, ...]
    usage: Usage
    started_at: float
    ended_at: float

    @property
    def duration(self) -> float:
        """Wall time of the whole ask: planning, running, joining."""
        return self.ended_at - self.started_at

    @property
    def replans(self) -> int:
        return sum(1 for p in self.plans if p.kind == "replan")

    @property
    def outputs(self) -> dict[str, Any]:
        return self.run_result.outputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "answer": self.answer,
            "duration": round(self.duration, 6),
            "plans": [p.to_dict() for p in self.plans],
            "decisions": [d.model_dump() for d in self.decisions],
            "usage": self.usage.to_dict(),
            "run": self.run_result.to_dict(),
        }
