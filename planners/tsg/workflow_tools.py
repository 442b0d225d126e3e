"""The tsg tools at module level, for running a compiled guide as a plain workflow::

    stepweave tsg compile guide.md -o guide.flow.yaml
    stepweave run guide.flow.yaml --tools planners.tsg.workflow_tools [--yes]

Conditions without a measurable test are asked at the terminal; without one, ``--yes``
(``STEPWEAVE_ASSUME_YES=1``, read when the condition comes up) takes them as true. There
is no LLM judge here: ``stepweave tsg run --llm`` is the way to get one.
"""

from __future__ import annotations

import asyncio
import os
import sys

from tools import Tool
from tools.builtin import ASSUME_YES_ENV, builtin_registry

from .judge import ConditionJudge, Judgement
from .tools import tsg_tools

__all__ = ["tsg_judge", "tsg_manual", "tsg_repeat"]

_lock = asyncio.Lock()


async def _terminal(question: str) -> bool | None:
    if not sys.stdin.isatty():
        return None
    async with _lock:
        answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


class _EnvironmentJudge(ConditionJudge):
    """Reads ``--yes`` from the environment at decision time (the CLI sets it when the run starts)."""

    async def decide(self, *args: object, **kwargs: object) -> Judgement:
        self.assume_yes = os.environ.get(ASSUME_YES_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        return await super().decide(*args, **kwargs)  # type: ignore[arg-type]


_registry = builtin_registry()
_tools: dict[str, Tool] = {
    t.name: t for t in tsg_tools(_EnvironmentJudge(ask=_terminal), _registry, _terminal)
}
tsg_judge = _tools["tsg_judge"]
tsg_manual = _tools["tsg_manual"]
tsg_repeat = _tools["tsg_repeat"]
