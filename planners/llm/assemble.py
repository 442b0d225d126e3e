"""From parsed task objects to engine ``Task``s that are safe to start at once.

Each task is validated the moment it is complete (shape, tool, arguments, references),
so a bad task never reaches the scheduler and a good one never waits for the rest of the
plan. A task may only start after the tasks it uses, so one that names a task not yet
seen is held back until that task arrives; at the end of the plan whatever is still held
is a dangling reference or a cycle, and is reported as such.

The assembler outlives one model answer: across repairs and replans it remembers what
was already dispatched, so a repaired plan that repeats a started task does not run it
twice.

A plan is untrusted input (the model may follow instructions hidden in a fetched page or
a file). With ``gate`` on, every task that may change something is marked
``needs_approval``, so the run's approver decides before it starts: the tasks whose tool
is not declared read-only for the planned arguments. Arguments that still hold
expressions are only known when the task starts, so their task is gated unless the tool is
read-only whatever its arguments; the approver sees the rendered values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from orchestrator import Target, Task, TaskGraph, WorkflowError
from tools import ToolRegistry

from .references import translate_references
from .schema import PlanTask
from .settings import Placement
from .stream import ScannedTask

__all__ = ["PlanAssembler", "next_task_number"]

_NUMBERED = re.compile(r"^t([0-9]+)$")


def next_task_number(ids: Iterable[str]) -> int:
    """The first free number for ``t<N>`` ids after ``ids``."""
    numbers = [int(m.group(1)) for m in map(_NUMBERED.match, ids) if m]
    return max(numbers, default=0) + 1


def _format_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


class PlanAssembler:
    """Validates planned tasks and releases each as soon as everything it uses is known.

    Args:
        tools: the registry the tasks must use.
        existing: tasks already in the run (earlier plans); new tasks may use them.
        unusable: ids among ``existing`` without an output (failed, cancelled, skipped),
            mapped to why; a new task that uses one is rejected.
        target: where every task runs (``"local"``, or devices by id or labels).
        placement: where each task runs, by its tool, instead of ``target``; a task it
            finds no place for is rejected (the model repairs the plan).
    """

    def __init__(
        self,
        tools: ToolRegistry,
        *,
        existing: Mapping[str, Task] | None = None,
        unusable: Mapping[str, str] | None = None,
        target: Target = "local",
        gate: bool = False,
        placement: Placement | None = None,
        taken: set[str] | None = None,
    ) -> None:
        self._tools = tools
        self._target = target
        self._placement = placement
        self._gate = gate
        self._existing = dict(existing or {})
        self._unusable = dict(unusable or {})
        self.dispatched: dict[str, Task] = {}
        #: Every id dispatched in the run so far, shared by all of its assemblers (the plan,
        #: its repairs, the joiner's replans and failure replans may be in flight together).
        self._taken = taken if taken is not None else set()
        self._held: dict[str, Task] = {}
        self._rejected: dict[str, str] = {}
        self.problems: list[str] = []

    @property
    def known(self) -> set[str]:
        return self._existing.keys() | self.dispatched.keys()

    @property
    def next_number(self) -> int:
        return next_task_number(self.known | self._taken)

    def begin_attempt(self) -> None:
        """Forget the problems and rejected tasks of a previous answer (a repair follows)."""
        self.problems = []
        self._rejected = {}

    def add(self, scanned: ScannedTask) -> list[Task]:
        """Take one parsed element; return the tasks that became ready to start, in order."""
        if scanned.problem is not None:
            self.problems.append(scanned.problem)
            return []
        task = self._build(scanned.index, scanned.value)
        if task is None:
            return []
        if not task.dependencies <= self.known:
            self._held[task.id] = task
            return []
        return self._release(task)

    def _build(self, index: int, raw: Any) -> Task | None:
        where = f"tasks[{index}]"
        if not isinstance(raw, dict):
            self.problems.append(f"{where} is not a JSON object")
            return None
        try:
            planned = PlanTask.model_validate(raw)
        except ValidationError as exc:
            task_id = raw.get("id")
            raw_id = task_id if isinstance(task_id, str) else None
            self._reject(raw_id, f"{where}: {_format_validation(exc)}")
            return None
        where = f"task {planned.id!r}"
        previous = self.dispatched.get(planned.id) or self._existing.get(planned.id)
        args = self._clean_args(planned.tool, translate_references(planned.args))
        try:
            task = Task(
                id=planned.id,
                tool=planned.tool,
                args=args,
                deps=tuple(planned.deps),
                target=self._target if self._placement is None else self._placement.target(planned.tool),
                needs_approval=self._needs_approval(planned.tool, args),
            )
            dependencies = task.dependencies  # compiles the expressions
        except (ValidationError, WorkflowError) as exc:  # Task() raises WorkflowError, as do expressions
            detail = _format_validation(exc) if isinstance(exc, ValidationError) else str(exc)
            self._reject(planned.id, f"{where}: {detail}")
            return None
        if previous is not None:
            if _same(previous, task):
                return None  # a repair or replan repeated a task that already started
            self._reject(
                planned.id,
                f"{where}: id {planned.id!r} is already used by an earlier task; "
                f"number new tasks from t{self.next_number}",
            )
            return None
        if planned.id in self._taken:
            self._reject(
                planned.id,
                f"{where}: id {planned.id!r} is already used in this run; number new tasks from t{self.next_number}",
            )
            return None
        if planned.id in self._held:
            self._reject(planned.id, f"{where}: duplicate task id {planned.id!r}")
            return None
        problems = self._task_problems(task, dependencies)
        if problems:
            self._reject(planned.id, "; ".join(problems))
            return None
        return task

    def _task_problems(self, task: Task, dependencies: frozenset[str]) -> list[str]:
        where = f"task {task.id!r}"
        problems: list[str] = []
        if task.id in dependencies:
            problems.append(f"{where} uses its own output")
        for dep in sorted(dependencies & self._unusable.keys()):
            problems.append(f"{where} uses {dep!r}, which has no output ({self._unusable[dep]})")
        # Dependencies are checked later (they may still arrive); the rest by the engine's rules.
        problems += TaskGraph([task]).problems(self._tools, known=dependencies | self.known)
        if not problems and self._placement is not None:
            # Asked last and live: a device that went away since the prompt was written.
            unplaced = self._placement.problem(task)
            if unplaced:
                problems.append(f"{where}: {unplaced}")
        return problems

    def _needs_approval(self, tool_name: str, args: dict[str, Any]) -> bool | None:
        """``True`` when the task must be approved; ``None`` leaves it to the tool's own policy."""
        if not self._gate or tool_name not in self._tools:
            return None
        tool = self._tools.get(tool_name)
        if tool.read_only is True:
            return None
        if not _has_expression(args) and tool.is_read_only(args):
            return None
        return True

    def _clean_args(self, tool_name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Drop nulls for optional arguments: strict schemas make the model send them."""
        if tool_name not in self._tools:
            return args
        fields = self._tools.get(tool_name).args_model.model_fields
        return {
            key: value
            for key, value in args.items()
            if not (value is None and key in fields and not fields[key].is_required())
        }

    def _reject(self, task_id: str | None, problem: str) -> None:
        self.problems.append(problem)
        if task_id is not None:
            self._rejected[task_id] = problem

    def _release(self, task: Task) -> list[Task]:
        ready = [task]
        self.dispatched[task.id] = task
        self._taken.add(task.id)
        progress = True
        while progress and self._held:
            progress = False
            for held in list(self._held.values()):
                if held.id in self._taken:  # another plan took its id while it waited
                    del self._held[held.id]
                    self._reject(held.id, f"task {held.id!r}: id {held.id!r} is already used in this run")
                    continue
                if held.dependencies <= self.known:
                    del self._held[held.id]
                    self.dispatched[held.id] = held
                    self._taken.add(held.id)
                    ready.append(held)
                    progress = True
        return ready

    def finish(self) -> list[str]:
        """End of one answer: report held tasks (dangling references, cycles); return all problems."""
        if self._held:
            held = self._held
            cycle = TaskGraph(held.values()).find_cycle()
            if cycle:
                self.problems.append(
                    "cycle: " + " -> ".join(cycle) + " (a task may only use tasks that can run before it)"
                )
            in_cycle = set(cycle or ())
            for task in held.values():
                if task.id in in_cycle:
                    continue
                for dep in sorted(task.dependencies - self.known):
                    if dep in self._rejected:
                        why = "which was rejected (see its problem)"
                    elif dep in held:
                        continue  # reported for the task it waits on
                    else:
                        why = "which does not exist in the plan"
                    self.problems.append(f"task {task.id!r} uses {dep!r}, {why}")
            self._held = {}
        return self.problems


def _has_expression(value: Any) -> bool:
    """Whether ``value`` holds a ``${{ … }}`` anywhere (its final value is known only at run time)."""
    if isinstance(value, str):
        return "${{" in value or "${%" in value
    if isinstance(value, Mapping):
        return any(_has_expression(k) or _has_expression(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_expression(item) for item in value)
    return False


def _same(a: Task, b: Task) -> bool:
    return (a.tool, a.args, a.dependencies) == (b.tool, b.args, b.dependencies)
