"""The core model: ``Task``, ``TaskGraph`` and ``GraphEdit``.

A task's dependencies are its explicit ``deps`` plus every step its ``${{ … }}``
expressions reference (read from the expression's syntax tree). Validation collects
every problem, each naming the offending ids, and raises them together.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from tools import ToolRegistry

from .errors import ExpressionError, GraphEditError, GraphValidationError, WorkflowError
from .expressions import CompiledValue, Expression, compile_expression, compile_value
from .output_refs import output_reference_problems

__all__ = [
    "DeviceTarget",
    "GraphEdit",
    "LabelsTarget",
    "Target",
    "Task",
    "TaskGraph",
    "TaskStatus",
]

# The optional "[N]" suffix names the items a for_each task expands into at run time.
TASK_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*(\[[0-9]+\])?$"


class TaskStatus(StrEnum):
    """pending → ready → running → succeeded | failed | skipped | cancelled."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED})


class DeviceTarget(BaseModel):
    """Run on one named device: ``target: {device: dev-1}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    device: str


class LabelsTarget(BaseModel):
    """Run on any device carrying these labels: ``target: {labels: {site: lab}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    labels: dict[str, str]


#: Where a task runs: ``"local"`` (default), ``"any-device"``, or a device selector.
Target = Literal["local", "any-device"] | DeviceTarget | LabelsTarget


class _Compiled(NamedTuple):
    args: dict[str, CompiledValue]
    when: Expression | None
    for_each: Expression | None
    deps: frozenset[str]


class Task(BaseModel):
    """One step: a call of ``tool`` with ``args``, after ``deps``, if ``when`` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=TASK_ID_PATTERN, max_length=200)]
    tool: Annotated[str, Field(min_length=1)]
    args: dict[str, Any] = Field(default_factory=dict)
    deps: tuple[str, ...] = ()
    when: str | None = None
    #: An expression yielding a list: the task runs once per item (``item`` in scope),
    #: as tasks ``id[0]``, ``id[1]``…, and its output is the list of their outputs, in order.
    for_each: str | None = None
    join: Literal["all", "any"] = "all"
    target: Target = "local"
    timeout: Annotated[float, Field(gt=0)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    backoff: Annotated[float, Field(ge=0)] | None = None
    idempotent: bool | None = None
    needs_approval: bool | None = None
    description: str = ""

    _compiled: _Compiled | None = PrivateAttr(default=None)

    if not TYPE_CHECKING:  # type checkers keep pydantic's typed constructor

        def __init__(self, **data: Any) -> None:
            # A WorkflowError that says what to write, not pydantic's report (with a regex).
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise _task_error(exc, data) from None

        @classmethod
        def model_validate(cls, obj: Any, **options: Any) -> Task:
            # pydantic calls the __init__ above and wraps its error as a "Value error": unwrap.
            try:
                return super().model_validate(obj, **options)
            except ValidationError as exc:
                raise _unwrapped(exc) from None

    @field_validator("deps", mode="before")
    @classmethod
    def _one_dependency_is_a_list(cls, value: Any) -> Any:
        # deps="a" means ["a"], not the characters of "a".
        return [value] if isinstance(value, str) else value

    @field_validator("when", "for_each")
    @classmethod
    def _wrap_bare_expression(cls, value: str | None) -> str | None:
        # Accept `when: steps.a.output > 1` as GitHub Actions accepts a bare `if:`.
        if value is not None and "${{" not in value:
            return "${{ " + value + " }}"
        return value

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Task:
        """A copy with ``update`` applied, re-validated (the compiled cache is not carried over)."""
        data = self.model_dump()
        data.update(update or {})
        return Task.model_validate(data)

    def _compile(self) -> _Compiled:
        if self._compiled is None:
            args = {key: compile_value(value) for key, value in self.args.items()}
            when = compile_expression(self.when) if self.when else None
            for_each = compile_expression(self.for_each) if self.for_each else None
            deps = set(self.deps)
            for value in args.values():
                deps |= value.refs
            for expr in (when, for_each):
                if expr is not None:
                    deps |= expr.refs
            self._compiled = _Compiled(args, when, for_each, frozenset(deps))
        return self._compiled

    @property
    def items_expression(self) -> Expression | None:
        """The compiled ``for_each`` expression, if any."""
        return self._compile().for_each

    @property
    def compiled_args(self) -> dict[str, CompiledValue]:
        """Arguments with their expressions compiled (raises ``ExpressionError``)."""
        return self._compile().args

    @property
    def condition(self) -> Expression | None:
        """The compiled ``when`` condition, if any."""
        return self._compile().when

    @property
    def dependencies(self) -> frozenset[str]:
        """Explicit ``deps`` plus every step referenced by an expression."""
        return self._compile().deps

    @property
    def is_local(self) -> bool:
        return self.target == "local"


class GraphEdit(BaseModel):
    """A change to a graph, applied atomically or rejected whole.

    It may not touch a running or finished task (remove it, replace it, change its
    dependencies) and may not create a cycle. New tasks may depend on finished ones.
    """

    # Validator built on first use (~4 ms): only replanning and journals use edits, and
    # every command that imports the graph model (validate, --help of a flow) would pay it.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    add: list[Task] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    update: list[Task] = Field(default_factory=list, description="replacements, matched by id")
    add_deps: list[tuple[str, str]] = Field(default_factory=list, description="(task, dependency)")
    remove_deps: list[tuple[str, str]] = Field(default_factory=list, description="(task, dependency)")
    reason: str = ""

    @property
    def is_empty(self) -> bool:
        return not (self.add or self.remove or self.update or self.add_deps or self.remove_deps)


#: Field names people bring from workflows and other tools, and what a Task calls them.
_TASK_ALIASES = {
    "needs": "deps",
    "depends_on": "deps",
    "dependencies": "deps",
    "if": "when",
    "condition": "when",
    "with": "args",
    "arguments": "args",
    "uses": "tool",
    "retry": "retries",
}
_ID_RULE = "an id starts with a letter or '_' and has only letters, digits, '_' and '-', e.g. 'fetch_data'"
_TARGET_RULE = "'local', 'any-device', DeviceTarget(device=...) or LabelsTarget(labels={...})"


def _task_error(error: ValidationError, data: Mapping[str, Any]) -> WorkflowError:
    """One line naming each wrong field of a task and what to write instead."""
    task_id = data.get("id")
    head = f"invalid task {task_id!r}" if isinstance(task_id, str) else "invalid task"
    parts: list[str] = []
    for item in error.errors(include_url=False):
        part = _field_problem(item["loc"], item["type"], item["msg"], item["input"])
        if part not in parts:
            parts.append(part)
    return WorkflowError(f"{head}: {'; '.join(parts)}")


def _unwrapped(error: ValidationError) -> Exception:
    """The WorkflowError ``Task.__init__`` raised, if that is all ``error`` holds."""
    items = error.errors(include_url=False)
    if len(items) == 1:
        inner = items[0].get("ctx", {}).get("error")
        if isinstance(inner, WorkflowError):
            return inner
    return error


def _field_problem(loc: tuple[int | str, ...], kind: str, message: str, value: Any) -> str:
    field = str(loc[0]) if loc else ""
    if kind == "extra_forbidden":
        alias = _TASK_ALIASES.get(field.lower())
        hint = f" (did you mean {alias!r}?)" if alias else _did_you_mean(field, Task.model_fields)
        return f"unknown field {field!r}{hint}; fields: {', '.join(Task.model_fields)}"
    if kind == "missing":
        return f"missing {field!r}"
    if field == "id" and kind == "string_pattern_mismatch":
        return f"id {value!r} is not a valid id ({_ID_RULE})"
    if field == "target":
        return f"target must be {_TARGET_RULE}; got {value!r}"
    if field == "deps":
        return f"deps must be a list of task ids, e.g. deps=['fetch']; got {value!r}"
    where = ".".join(str(part) for part in loc)
    text = message.replace("Input should be", "must be").removeprefix("Value error, ")
    shown = (
        f"; got {value!r}" if isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60 else ""
    )
    return f"{where}: {text}{shown}" if where else text


def _as_task(value: Any, index: int) -> Task:
    """A task of a graph: a ``Task``, or a mapping of its fields (validated into one)."""
    if isinstance(value, Task):
        return value
    if isinstance(value, Mapping):
        return Task(**{str(key): item for key, item in value.items()})
    raise WorkflowError(
        f"task {index} is of type {type(value).__name__}; a graph takes Task(id=..., tool=..., ...) "
        "objects or dicts of the same fields"
    )


def _known_deps(task: Task) -> frozenset[str]:
    """Dependencies for structural checks, even if an expression does not compile."""
    try:
        return task.dependencies
    except ExpressionError:
        return frozenset(task.deps)


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TaskGraph:
    """Tasks keyed by id, in insertion order, with their dependency edges."""

    __slots__ = ("_tasks", "name")

    def __init__(self, tasks: Iterable[Task | Mapping[str, Any]] = (), *, name: str | None = None) -> None:
        self.name = name
        self._tasks: dict[str, Task] = {}
        duplicates: list[str] = []
        if isinstance(tasks, (Task, Mapping, str, bytes)):
            raise WorkflowError(
                f"a graph takes a list of tasks, got one {type(tasks).__name__}: write [task]"
            )
        for index, item in enumerate(tasks):
            task = _as_task(item, index)
            if task.id in self._tasks:
                duplicates.append(task.id)
            self._tasks[task.id] = task
        if duplicates:
            ids = ", ".join(repr(d) for d in dict.fromkeys(duplicates))
            raise GraphValidationError([f"duplicate task id {ids}: task ids must be unique"])

    # -- container protocol -----------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, Task]:
        return MappingProxyType(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __getitem__(self, task_id: str) -> Task:
        return self._tasks[task_id]

    def __repr__(self) -> str:
        return f"TaskGraph({len(self._tasks)} tasks{f', name={self.name!r}' if self.name else ''})"

    def add(self, task: Task) -> None:
        """Append ``task`` (a task added to a running graph, a ``for_each`` item).

        Only the id is checked here (``GraphValidationError`` if taken): call
        ``task_problems`` first, as the scheduler does before a task joins a live run.
        """
        if task.id in self._tasks:
            raise GraphValidationError([f"duplicate task id {task.id!r}: task ids must be unique"])
        self._tasks[task.id] = task

    def dependents(self) -> dict[str, list[str]]:
        """For each task id, the ids of the tasks that depend on it."""
        out: dict[str, list[str]] = {tid: [] for tid in self._tasks}
        for task in self._tasks.values():
            for dep in task.dependencies:
                if dep in out:
                    out[dep].append(task.id)
        return out

    # -- validation -------------------------------------------------------------------

    def problems(self, tools: ToolRegistry | None = None, *, known: Collection[str] = ()) -> list[str]:
        """Every problem in the graph, each naming the task (empty when valid).

        ``known`` names tasks outside this graph that may be depended on (a stream's
        earlier tasks).
        """
        problems: list[str] = []
        ids = self._tasks.keys()
        for task in self._tasks.values():
            problems.extend(self._task_problems(task, ids, known, tools))
        if tools is not None:
            problems.extend(self._output_problems(tools))
        # Checked even when other problems exist, so one pass reports everything.
        cycle = self.find_cycle()
        if cycle:
            problems.append("cycle: " + " -> ".join(cycle))
        return problems

    def task_problems(
        self, task: Task, tools: ToolRegistry | None = None, *, known: Collection[str] = ()
    ) -> list[str]:
        """Every problem ``task`` would bring into this graph; its references may name the
        graph's tasks (and ``known``). Checks one task, not cycles: for a task to add."""
        return self._task_problems(task, self._tasks.keys(), known, tools)

    @staticmethod
    def _task_problems(
        task: Task, ids: Collection[str], known: Collection[str], tools: ToolRegistry | None
    ) -> list[str]:
        where = f"task {task.id!r}"
        problems: list[str] = []
        try:
            args = task.compiled_args
            condition = task.condition
            task.items_expression  # noqa: B018 - compiles it, raising ExpressionError
        except ExpressionError as exc:
            return [f"{where}: {exc}"]
        for dep in task.deps:
            if dep == task.id:
                problems.append(f"{where} depends on itself")
            elif dep not in ids and dep not in known:
                problems.append(f"{where} depends on unknown task {dep!r}{_did_you_mean(dep, ids)}")
        for key, value in args.items():
            for ref in sorted(value.refs):
                if ref == task.id:
                    problems.append(f"{where}: args.{key} references its own output")
                elif ref not in ids and ref not in known:
                    problems.append(
                        f"{where}: args.{key} references unknown step {ref!r}{_did_you_mean(ref, ids)}"
                    )
        items = task.items_expression
        if items is not None and items.roots & {"item"}:
            problems.append(f"{where}: for_each cannot use 'item' (it is what for_each defines)")
        if items is None and any("item" in v.roots for v in args.values()):
            problems.append(f"{where}: args use 'item' but the task has no for_each")
        if condition is not None and "item" in condition.roots:
            problems.append(
                f"{where}: when cannot use 'item': it is evaluated once, before for_each fans out"
            )
        for field, expr in (("when", condition), ("for_each", items)):
            if expr is not None and not expr.native:
                # Text around or between placeholders renders to a string, and any non-empty
                # string is true: `${{ a }} and ${{ b }}` would always hold.
                problems.append(
                    f"{where}: {field} must be one expression, not text with placeholders "
                    f"({expr.source!r}); put it all inside one ${{{{ … }}}}, e.g. ${{{{ a and b }}}}"
                )
            for ref in sorted(expr.refs if expr is not None else ()):
                if ref == task.id:
                    problems.append(f"{where}: {field} references its own output")
                elif ref not in ids and ref not in known:
                    problems.append(
                        f"{where}: {field} references unknown step {ref!r}{_did_you_mean(ref, ids)}"
                    )
        if tools is not None:
            if task.tool not in tools:
                problems.append(f"{where}: {tools.unknown_message(task.tool)}")
            else:
                dynamic = {k for k, v in args.items() if not v.is_constant}
                for problem in tools.get(task.tool).check_arguments(task.args, dynamic):
                    problems.append(f"{where} (tool {task.tool!r}): {problem}")
        return problems

    def _output_problems(self, tools: ToolRegistry) -> list[str]:
        """``steps.x.outpt`` and ``steps.x.output.stdot``: fields the tools do not return."""
        steps = {tid: (t.tool, t.for_each is not None) for tid, t in self._tasks.items()}
        problems: list[str] = []
        for task in self._tasks.values():
            try:
                fields = [(f"args.{key}", value.expressions) for key, value in task.compiled_args.items()]
                fields += [
                    (name, (e,))
                    for name, e in (("when", task.condition), ("for_each", task.items_expression))
                    if e
                ]
            except ExpressionError:
                continue  # reported by _task_problems
            for label, expressions in fields:
                for expression in expressions:
                    for problem in output_reference_problems(label, expression, steps, tools):
                        problems.append(f"task {task.id!r}: {problem}")
        return problems

    def validate(self, tools: ToolRegistry | None = None, *, source: str | None = None) -> None:
        """Raise ``GraphValidationError`` listing every problem, or return quietly."""
        problems = self.problems(tools)
        if problems:
            raise GraphValidationError(problems, source=source)

    def topological_order(self) -> list[str]:
        """Task ids so that each comes after its dependencies (Kahn's algorithm)."""
        order, _ = self._kahn()
        if len(order) != len(self._tasks):
            raise GraphValidationError(["cycle: " + " -> ".join(self.find_cycle() or [])])
        return order

    def _kahn(self) -> tuple[list[str], dict[str, int]]:
        deps = {tid: _known_deps(t) for tid, t in self._tasks.items()}
        remaining = {tid: sum(1 for d in ds if d in self._tasks) for tid, ds in deps.items()}
        dependents: dict[str, list[str]] = {tid: [] for tid in self._tasks}
        for tid, ds in deps.items():
            for d in ds:
                if d in dependents:
                    dependents[d].append(tid)
        queue = [tid for tid, n in remaining.items() if n == 0]
        order: list[str] = []
        while queue:
            tid = queue.pop()
            order.append(tid)
            for child in dependents[tid]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    queue.append(child)
        return order, remaining

    def find_cycle(self) -> list[str] | None:
        """One dependency cycle as a closed path of ids (``[a, b, a]``), or ``None``."""
        order, remaining = self._kahn()
        if len(order) == len(self._tasks):
            return None
        stuck = {tid for tid, n in remaining.items() if n > 0}
        # Walk dependencies from a stuck node until one repeats: every stuck node has a
        # stuck dependency, so the walk must close a loop.
        path: list[str] = []
        seen: dict[str, int] = {}
        node = min(stuck)
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min(d for d in _known_deps(self._tasks[node]) if d in stuck)
        loop = path[seen[node] :]
        # Report in execution direction: dependency first.
        loop.reverse()
        return [*loop, loop[0]]

    # -- edits ------------------------------------------------------------------------

    def apply(
        self,
        edit: GraphEdit,
        *,
        frozen: Collection[str] = (),
        tools: ToolRegistry | None = None,
    ) -> TaskGraph:
        """A new graph with ``edit`` applied; ``GraphEditError`` (and no change) if invalid.

        ``frozen`` names tasks that have started or ended: the edit may not remove,
        replace or re-wire them.
        """
        problems: list[str] = []
        tasks = dict(self._tasks)
        for tid in edit.remove:
            if tid not in tasks:
                problems.append(f"cannot remove unknown task {tid!r}")
            elif tid in frozen:
                problems.append(f"cannot remove task {tid!r}: it has already started")
            else:
                del tasks[tid]
        for task in edit.update:
            if task.id not in tasks:
                problems.append(f"cannot update unknown task {task.id!r}")
            elif task.id in frozen:
                problems.append(f"cannot update task {task.id!r}: it has already started")
            else:
                tasks[task.id] = task
        for task in edit.add:
            if task.id in tasks:
                problems.append(f"cannot add task {task.id!r}: a task with that id exists")
            else:
                tasks[task.id] = task
        for tid, dep in edit.add_deps:
            if tid not in tasks:
                problems.append(f"cannot add a dependency to unknown task {tid!r}")
            elif tid in frozen:
                problems.append(f"cannot add a dependency to task {tid!r}: it has already started")
            else:
                old = tasks[tid]
                tasks[tid] = old.model_copy(update={"deps": (*old.deps, dep)})
        for tid, dep in edit.remove_deps:
            if tid not in tasks:
                problems.append(f"cannot remove a dependency of unknown task {tid!r}")
            elif tid in frozen:
                problems.append(f"cannot remove a dependency of {tid!r}: it has already started")
            elif dep not in tasks[tid].deps:
                implicit = dep in tasks[tid].dependencies
                why = (
                    "it comes from an expression in its args; update the task"
                    if implicit
                    else ("it is not one of its deps")
                )
                problems.append(f"cannot remove dependency {dep!r} of {tid!r}: {why}")
            else:
                old = tasks[tid]
                tasks[tid] = old.model_copy(update={"deps": tuple(d for d in old.deps if d != dep)})
        if not problems:
            candidate = TaskGraph(tasks.values(), name=self.name)
            problems = candidate.problems(tools)
            if not problems:
                return candidate
        listing = "; ".join(problems)
        raise GraphEditError(f"edit rejected, graph unchanged: {listing}")

    # -- serialisation ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tasks": [t.model_dump(mode="json", exclude_defaults=True) for t in self],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskGraph:
        return cls((Task.model_validate(t) for t in data.get("tasks", ())), name=data.get("name"))
