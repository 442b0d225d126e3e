"""Every problem of a parsed workflow that needs the whole workflow to see, each at its step.

The engine's ``TaskGraph.problems`` does the graph checks (unknown steps and tools,
argument types, cycles) and names the task; this module runs it on the workflow's tasks
and places each message at that step's line, in the workflow's words ("needs", "step").
The message says which key is wrong (``args.url references unknown step 'x'``). Checks
only a workflow can make are added here: duplicate step ids (a graph cannot even hold
them), undeclared inputs and the outputs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchestrator import ExpressionError, Task, TaskGraph
from orchestrator.expressions import compile_value
from tools import ToolRegistry

from .mcp_servers import pending_mcp_tools
from .outputs import output_problems
from .problems import Problem, did_you_mean
from .references import input_references
from .steps import Step, to_task
from .yaml_source import Path, SourceMap

if TYPE_CHECKING:
    from .model import Workflow

__all__ = ["find_problems", "step_tasks"]

_TASK = re.compile(r"^task '(?P<id>[^']+)'(?P<tool> \(tool '[^']+'\))?:? (?P<rest>.*)$", re.S)
_CYCLE = re.compile(r"^cycle: (?P<first>[^ ]+) -> ")
#: The engine's words for what a workflow calls ``needs`` and steps.
_VOCABULARY = (
    (re.compile(r"^depends on unknown task "), "needs unknown step "),
    (re.compile(r"^depends on itself"), "needs itself"),
    (re.compile(r"Input should be"), "must be"),
)


def step_tasks(workflow: Workflow) -> list[Task]:
    """One task per step (the first, when ids repeat), with the defaults filled in."""
    first: dict[str, Task] = {}
    for step in workflow.steps:
        first.setdefault(step.id, to_task(step, workflow.defaults))
    return list(first.values())


def find_problems(workflow: Workflow, tools: ToolRegistry | None) -> list[Problem]:
    """Duplicates, graph problems, undeclared inputs and output problems, all of them."""
    at = _StepLocator(workflow.steps, workflow.source_map)
    problems = _duplicate_ids(workflow.steps, at)
    tasks = step_tasks(workflow)
    if tools is not None and workflow.mcp_servers:  # their tools are checked once they run
        tools = pending_mcp_tools(tools, workflow.mcp_servers, [task.tool for task in tasks])
    problems += [at.graph_problem(message) for message in TaskGraph(tasks).problems(tools)]
    problems += _undeclared_inputs(workflow, tasks, at)
    problems += output_problems(workflow.outputs, [t.id for t in tasks], workflow.source_map)
    return problems


class _StepLocator:
    """Makes problems at a step's line (where ``- id: …`` starts), by step id."""

    def __init__(self, steps: Sequence[Step], source_map: SourceMap) -> None:
        self.index = {step.id: i for i, step in reversed(list(enumerate(steps)))}
        self.steps = steps
        self.source_map = source_map

    def __call__(
        self,
        step_id: str,
        message: str,
        *,
        hint: str | None = None,
        index: int | None = None,
        at: tuple[str, ...] = (),
    ) -> Problem:
        where = index if index is not None else self.index.get(step_id)
        path: Path = ("steps", where, *at) if where is not None else ("steps",)
        return self.source_map.problem(path, message, step=step_id, hint=hint)

    def graph_problem(self, message: str) -> Problem:
        """Place one of ``TaskGraph.problems``' messages; unrecognised ones go to ``steps:``."""
        cycle = _CYCLE.match(message)
        if cycle:
            hint = "a step cannot wait, directly or not, for its own result"
            return self(cycle.group("first"), message, hint=hint)
        match = _TASK.match(message)
        if match is None or match.group("id") not in self.index:
            return self.source_map.problem(("steps",), message)
        rest = _name_the_field(self.steps[self.index[match.group("id")]], match.group("rest"))
        for pattern, words in _VOCABULARY:
            rest = pattern.sub(words, rest)
        if match.group("tool"):
            rest = f"{match.group('tool').strip(' ()')}: {rest}"
        return self(match.group("id"), rest, at=_field_path(rest))


#: A reference checked against a tool's output (orchestrator.output_refs) names its field.
_FIELD = re.compile(r"^(?:args\.(?P<arg>[^:. ]+)|(?P<key>when|for_each)): steps[.\[]")


def _field_path(message: str) -> tuple[str, ...]:
    """``args.url: steps.x.outpt…`` is about the value of ``url``: point at its line."""
    found = _FIELD.match(message)
    if found is None:
        return ()
    return ("args", found.group("arg")) if found.group("arg") else (found.group("key"),)


def _name_the_field(step: Step, message: str) -> str:
    """Prefix an expression error (the engine names only the task) with the key holding it."""
    fields: list[tuple[str, Any]] = [(f"args.{key}", value) for key, value in step.args.items()]
    for label, source in (("when", step.when), ("for_each", step.for_each)):
        if source is not None and "${{" not in source:
            source = "${{ " + source + " }}"  # a bare condition, as the engine wraps it
        fields.append((label, source))
    for label, value in fields:
        try:
            compile_value(value)
        except ExpressionError as exc:
            if str(exc) == message:
                return f"{label}: {message}"
    return message


def _duplicate_ids(steps: Sequence[Step], at: _StepLocator) -> list[Problem]:
    problems: list[Problem] = []
    for index, step in enumerate(steps):
        first = at.index[step.id]
        if first != index:
            earlier = at.source_map.find(("steps", first))
            hint = f"the first is at line {earlier.line}" if earlier else None
            message = "duplicate step id: step ids must be unique"
            problems.append(at(step.id, message, hint=hint, index=index))
    return problems


def _undeclared_inputs(workflow: Workflow, tasks: Sequence[Task], at: _StepLocator) -> list[Problem]:
    """``inputs.hots`` where only ``host`` is declared fails at run time; say so now."""
    declared = list(workflow.inputs)

    def hint(name: str) -> str:
        return did_you_mean(name, declared) or "declare it under inputs:"

    problems: list[Problem] = []
    for task in tasks:
        for field, value in (("args", task.args), ("when", task.when), ("for_each", task.for_each)):
            for path, name in input_references(value, (field,)):
                if name not in workflow.inputs:
                    label = ".".join(map(str, path))
                    problems.append(at(task.id, f"{label} uses unknown input {name!r}", hint=hint(name)))
    for path, name in input_references(workflow.outputs):
        if name not in workflow.inputs:
            message = f"output {path[0]!r} uses unknown input {name!r}"
            problems.append(workflow.source_map.problem(("outputs", *path), message, hint=hint(name)))
    return problems
