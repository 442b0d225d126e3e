"""The tsg tools at module level, for running a compiled guide as a plain workflow::

    stepweave tsg compile guide.md -o guide.flow.yaml
    stepweave run guide.flow.yaml --tools planners.tsg.workflow_tools [--yes]

Conditions without a measurable test are asked through the run's prompter (the terminal
of ``stepweave run``, one question at a time with its approvals); without a terminal they
are undecided, which never holds (``--yes`` approves commands, it never decides a
condition). There is no LLM judge here: ``stepweave tsg run --llm`` is the way to get one.
A journaled ``stepweave tsg run`` resumes with
``stepweave resume RUN_ID --tools planners.tsg.workflow_tools``.
"""

from __future__ import annotations

from tools import Tool
from tools.builtin import builtin_registry

from .judge import ConditionJudge
from .tools import tsg_tools

__all__ = ["tsg_judge", "tsg_manual", "tsg_repeat"]

_registry = builtin_registry()
_tools: dict[str, Tool] = {t.name: t for t in tsg_tools(ConditionJudge(), _registry)}
tsg_judge = _tools["tsg_judge"]
tsg_manual = _tools["tsg_manual"]
tsg_repeat = _tools["tsg_repeat"]
