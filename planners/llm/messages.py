"""The chat messages of plan and replan calls, from the prompt templates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from orchestrator import Task
from tools import ToolRegistry

from .context import Outcome, describe_results, describe_tools
from .prompts import render
from .settings import Placement

__all__ = ["plan_messages", "replan_messages"]

Messages = list[dict[str, str]]


def _system(tools: ToolRegistry, instructions: str, placement: Placement | None) -> dict[str, str]:
    content = render("planner_system", tools=describe_tools(tools, placement), instructions=instructions)
    return {"role": "system", "content": content}


def plan_messages(
    tools: ToolRegistry, request: str, *, instructions: str = "", placement: Placement | None = None
) -> Messages:
    """System prompt (tools and where they run, format, rules) and the user's request."""
    user = {"role": "user", "content": render("planner_user", request=request)}
    return [_system(tools, instructions, placement), user]


def replan_messages(
    tools: ToolRegistry,
    request: str,
    *,
    tasks: Iterable[Task],
    outcomes: Mapping[str, Outcome],
    next_number: int,
    result_limit: int,
    instructions: str = "",
    reason: str = "",
    failed: str | None = None,
    error: str = "",
    removed: Sequence[str] = (),
    allow_empty: bool = False,
    placement: Placement | None = None,
) -> Messages:
    """A new plan after the joiner's ``reason``, or after task ``failed`` with ``error``."""
    content = render(
        "replan",
        request=request,
        results=describe_results(tasks, outcomes, limit=result_limit),
        reason=reason,
        failed=failed,
        error=error,
        removed=list(removed),
        allow_empty=allow_empty,
        next_number=next_number,
    )
    return [_system(tools, instructions, placement), {"role": "user", "content": content}]
