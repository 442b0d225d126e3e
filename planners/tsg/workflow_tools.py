"""The tsg tools at module level, for running a compiled guide as a plain workflow::

    stepweave tsg compile guide.md -o guide.flow.yaml
    stepweave run guide.flow.yaml --tools planners.tsg.workflow_tools [--yes]

Conditions without a measurable test are asked at the terminal; without one they are
undecided, which never holds (``--yes`` approves commands, it never decides a condition).
There is no LLM judge here: ``stepweave tsg run --llm`` is the way to get one. A journaled
``stepweave tsg run`` resumes with ``stepweave resume RUN_ID --tools planners.tsg.workflow_tools``.
"""

from __future__ import annotations

import asyncio
import sys

from tools import Tool
from tools.builtin import builtin_registry

from .judge import ConditionJudge
from .tools import tsg_tools

__all__ = ["tsg_judge", "tsg_manual", "tsg_repeat"]

_lock = asyncio.Lock()


async def _terminal(question: str) -> bool | None:
    if not sys.stdin.isatty():
        return None
    async with _lock:
        answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")


_registry = builtin_registry()
_tools: dict[str, Tool] = {t.name: t for t in tsg_tools(ConditionJudge(ask=_terminal), _registry, _terminal)}
tsg_judge = _tools["tsg_judge"]
tsg_manual = _tools["tsg_manual"]
tsg_repeat = _tools["tsg_repeat"]
