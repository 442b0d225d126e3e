"""The output of the compiler: ``CompiledGuide`` (steps, inputs, YAML) and ``CompiledStep``.

Each step keeps where it came from (guide line, command, condition), so the CLI, the
linter's users and the tests can ask about the DAG without re-reading YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from planners.workflow import Workflow, parse_workflow

from .commands import Command
from .conditions import Condition
from .steps import Guide

if TYPE_CHECKING:
    from .plan import Plan

__all__ = ["CompiledGuide", "CompiledStep", "Gate"]

Gate = tuple[str, bool]  # (judge step id, negated)


@dataclass
class CompiledStep:
    """One workflow step and where it came from in the guide."""

    id: str
    tool: str
    args: dict[str, Any]
    kind: str  # command, judge, manual, repeat
    line: int
    title: str
    needs: list[str] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)
    join: str = "all"
    needs_approval: bool = False
    command: Command | None = None
    body: list[Command] = field(default_factory=list)  # a loop's commands
    condition: Condition | None = None
    comments: list[str] = field(default_factory=list)
    when_expr: str | None = None  # several ways in: which of them lead here

    @property
    def when(self) -> str | None:
        if self.when_expr is not None:
            return self.when_expr
        if not self.gates:
            return None
        parts = [f"{'not ' if negated else ''}steps.{judge}.output.holds" for judge, negated in self.gates]
        return "${{ " + " and ".join(parts) + " }}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "tool": self.tool, "description": self.title}
        if self.needs:
            data["needs"] = list(self.needs)
        if self.when:
            data["when"] = self.when
        if self.join != "all":
            data["join"] = self.join
        if self.needs_approval:
            data["needs_approval"] = True
        data["args"] = self.args
        return data


@dataclass
class CompiledGuide:
    """The workflow a guide compiles to, plus the links back to the guide."""

    guide: Guide
    name: str
    steps: list[CompiledStep]
    inputs: dict[str, dict[str, Any]]
    plan: Plan | None = None

    def step(self, step_id: str) -> CompiledStep:
        return next(s for s in self.steps if s.id == step_id)

    def command_steps(self) -> list[CompiledStep]:
        return [s for s in self.steps if s.kind in ("command", "repeat")]

    def ancestors(self, step_id: str) -> set[str]:
        needs = {s.id: s.needs for s in self.steps}
        seen: set[str] = set()
        stack = list(needs[step_id])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(needs[current])
        return seen

    def parallel(self, first: str, second: str) -> bool:
        """Whether two steps may run at the same time (neither waits for the other)."""
        return first not in self.ancestors(second) and second not in self.ancestors(first)

    def waves(self) -> list[list[CompiledStep]]:
        """Steps by depth: each wave can start once the waves before it ended."""
        depth: dict[str, int] = {}
        for step in self.steps:  # emitted in dependency order
            depth[step.id] = 1 + max((depth[n] for n in step.needs), default=-1)
        result: list[list[CompiledStep]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for step in self.steps:
            result[depth[step.id]].append(step)
        return result

    def unsafe_values(self, values: Mapping[str, Any]) -> list[str]:
        """Input values a command would read as an option: one message per refusal.

        A placeholder that starts a word where the program expects an operand (``find
        $LOGDIR``, ``sort "$FILE"``) must not start with ``-``: ``LOGDIR=-delete`` would
        turn a listing into a deletion, and quoting cannot prevent that. Values come from
        ``--set``, ``--incident`` (alert labels: untrusted) or the front matter's defaults.
        """
        problems: list[str] = []
        seen: set[tuple[str, int]] = set()
        source = self.guide.source or "<guide>"
        for step in self.steps:
            if step.kind not in ("command", "repeat"):
                continue
            for command in [*([step.command] if step.command else []), *step.body]:
                for name, program in command.operand_placeholders():
                    value = values.get(name, self.inputs.get(name, {}).get("default"))
                    if (
                        not isinstance(value, str)
                        or not value.startswith("-")
                        or (name, command.line) in seen
                    ):
                        continue
                    seen.add((name, command.line))
                    problems.append(
                        f"{source}:{command.line}: step {step.id!r}: the value of {name} ({value[:60]!r}) "
                        f"starts with '-', so {program or 'the command'} would read it as an option; refused"
                    )
        return problems

    def workflow_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "description": self.guide.title}
        if self.inputs:
            data["inputs"] = self.inputs
        data["defaults"] = {"timeout": 300}
        data["steps"] = [s.as_dict() for s in self.steps]
        return data

    def to_yaml(self) -> str:
        """The workflow as YAML, with comments pointing back to the guide's lines."""
        source = self.guide.source or "<guide>"
        head = {k: v for k, v in self.workflow_dict().items() if k != "steps"}
        parts = [
            f"# Compiled from {source} by `stepweave tsg compile`; edit freely, it is a plain workflow.",
            "# Steps without a path between them run in parallel; `tsg_judge` steps decide the guide's",
            "# conditions, `tsg_manual` steps are done by a person, `tsg_repeat` steps are bounded loops.",
            "# Run: stepweave tsg run GUIDE.md, or stepweave run THIS_FILE --tools planners.tsg.workflow_tools",
            _dump(head).rstrip(),
            "steps:",
        ]
        for step in self.steps:
            parts.append("")
            parts.extend(f"  # {line}" for line in step.comments)
            parts.append(_indent(_dump([step.as_dict()])).rstrip())
        return "\n".join(parts) + "\n"

    def plandag(self) -> dict[str, Any]:
        """StepFly's PlanDAG JSON with provenance (node lines, kinds, commands, gates)."""
        if self.plan is not None:
            return self.plan.as_plandag()
        from .plan import build_plan

        return build_plan("\n".join(self.guide.lines), self.guide.source).as_plandag()

    def workflow(self) -> Workflow:
        return parse_workflow(self.to_yaml(), source=f"{self.guide.source or '<guide>'} (compiled)")


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else line for line in text.splitlines())
