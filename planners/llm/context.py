"""What the model is shown about a run: its tasks, in plan notation, with their results.

Results are typed values (pydantic models, lists, numbers); the model sees them as JSON,
cut at a size limit so one large output cannot crowd the rest out of the prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from orchestrator import Task, TaskError, TaskStatus
from tools import ToolRegistry

from .settings import Placement
from .tooldocs import signature, summary

__all__ = ["Outcome", "describe_results", "describe_tools", "to_plan_notation"]

_EXPRESSION = re.compile(r"\$\{\{ steps\.(t[0-9]+)\.output((?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*) \}\}")


class Outcome(Protocol):
    """How a task ended: a ``TaskResult`` or a ``TaskEnded`` event both fit."""

    @property
    def status(self) -> TaskStatus: ...
    @property
    def output(self) -> Any: ...
    @property
    def error(self) -> TaskError | None: ...


def to_plan_notation(value: Any) -> Any:
    """Undo the reference translation (``${{ steps.t1.output }}`` → ``$t1``) for display."""
    if isinstance(value, str):
        return _EXPRESSION.sub(lambda m: f"${m.group(1)}{m.group(2)}", value)
    if isinstance(value, Mapping):
        return {k: to_plan_notation(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plan_notation(v) for v in value]
    return value


def as_json(value: Any, limit: int) -> str:
    """``value`` as compact JSON, cut to ``limit`` characters."""
    text = json.dumps(to_jsonable_python(value, fallback=repr), ensure_ascii=False, default=repr)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def describe_tools(tools: ToolRegistry, placement: Placement | None = None) -> list[dict[str, str]]:
    """Name, description, compact argument schema and (with ``placement``) where each tool
    runs, for the planner prompt."""
    return [
        {
            "name": tool.name,
            # Compact: a signature and one sentence, not the full schema (the grammar has that).
            "signature": signature(tool),
            "summary": summary(tool),
            "where": (placement.where(tool.name) if placement is not None else None) or "",
        }
        for tool in tools
    ]


def describe_results(tasks: Iterable[Task], outcomes: Mapping[str, Outcome], *, limit: int) -> str:
    """One line per task: ``t2 = search({"q": "$t1"}) -> succeeded: {...}``."""
    lines = []
    for task in tasks:
        call = f"{task.id} = {task.tool}({as_json(to_plan_notation(task.args), limit)})"
        outcome = outcomes.get(task.id)
        if outcome is None:
            lines.append(f"{call} -> not finished")
        elif outcome.status is TaskStatus.SUCCEEDED:
            lines.append(f"{call} -> succeeded: {as_json(outcome.output, limit)}")
        elif outcome.error is not None:
            lines.append(f"{call} -> {outcome.status.value}: {outcome.error}")
        else:
            lines.append(f"{call} -> {outcome.status.value}")
    return "\n".join(lines) if lines else "(no tasks)"
