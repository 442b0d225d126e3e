"""The dependency-driven scheduler: every task starts the moment its inputs are ready.

Readiness has one source of truth, a counter per task of dependencies that have not yet
ended: when a task ends it decrements its dependents' counters and starts those that
reach zero. Nothing polls and nothing sleeps, so a slow branch never delays an unrelated
fast one. All steps of a run live in one ``asyncio.TaskGroup``: cancelling the run cancels
every step; a per-task timeout cancels only that step.

Dependency outcomes decide what a task does once all of them have ended:

- ``join: all`` (default): runs if every dependency succeeded; is SKIPPED if one was
  skipped (conditions propagate down a branch); is CANCELLED if one failed.
- ``join: any`` (an OR-join): runs if at least one dependency succeeded.
- then ``when`` is evaluated: false means SKIPPED.

This module is the hot path: readiness, dispatch and ending, tuned together. The policy
types and the gates only some tasks pass (approval, write-ahead, retries, timeouts,
concurrency limits) live in ``orchestrator/scheduling/``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any

from tools import Tool, ToolContext, ToolError, ToolRegistry
from tools.prompter import default_prompter

from .errors import ErrorKind, GraphEditError, GraphValidationError
from .events import (
    Event,
    GraphEdited,
    RunEnded,
    RunResumed,
    RunStarted,
    TaskAdded,
    TaskEnded,
    TaskProgress,
    TaskReady,
    TaskStarted,
)
from .executors import Executor, ToolCall
from .expressions import plain_data
from .graph import _TERMINAL, GraphEdit, Task, TaskGraph, TaskStatus
from .result import RunResult, RunStatus, TaskError, is_retryable

# The policy types and the rarely-run gates live in orchestrator/scheduling/; their public
# names stay importable from here, where they were first published.
from .scheduling.approval import ApprovalRefused
from .scheduling.durability import Barrier
from .scheduling.gates import Gates
from .scheduling.limits import LimitTable
from .scheduling.node import Node
from .scheduling.policy import Approver, FailurePolicy, Replanner, ReplanRequest, RunPolicy
from .scheduling.resume import ResumePoint
from .scheduling.timeouts import timed

__all__ = [
    "Approver",
    "Barrier",
    "FailurePolicy",
    "ReplanRequest",
    "Replanner",
    "ResumePoint",
    "RunPolicy",
    "Scheduler",
]

_log = logging.getLogger("stepweave.scheduler")

#: Most items one for_each may expand into: a typo'd expression must not fork a million tasks.
MAX_FAN_OUT = 10_000

_PENDING = TaskStatus.PENDING
_READY = TaskStatus.READY
_RUNNING = TaskStatus.RUNNING
_SUCCEEDED = TaskStatus.SUCCEEDED
_FAILED = TaskStatus.FAILED
_SKIPPED = TaskStatus.SKIPPED
_CANCELLED = TaskStatus.CANCELLED
#: Shared by schedulers built without one: frozen, so sharing is safe.
_DEFAULT_POLICY = RunPolicy()


class Scheduler:
    """Runs one graph once. Built and driven by ``orchestrator.run.Run``."""

    def __init__(
        self,
        graph: TaskGraph,
        *,
        tools: ToolRegistry,
        run_id: str,
        emit: Callable[[Event], None],
        executors: Mapping[str, Executor],
        policy: RunPolicy = _DEFAULT_POLICY,
        inputs: Mapping[str, Any] | None = None,
        barrier: Barrier | None = None,
        resume: ResumePoint | None = None,
    ) -> None:
        self.run_id = run_id
        self.graph = graph
        self._tools = tools
        self._emit = emit
        self._executors = executors
        self._policy = policy
        self._failure_policy = policy.failure_policy
        self._replanner = policy.replanner
        self._prompter = policy.prompter if policy.prompter is not None else default_prompter()
        self._limits = LimitTable(policy.max_concurrency, policy.tool_limits)
        self._gates = Gates(
            run_id=run_id,
            policy=policy,
            emit=emit,
            barrier=barrier,
            attempt=self._attempt,
            render_args=self._render_args,
        )
        self._steps: dict[str, dict[str, Any]] = {}
        # Expressions see plain JSON-like data only, never the objects tools returned
        # (a pydantic model in scope would hand an expression its classmethods).
        self._scope: dict[str, Any] = {"steps": self._steps, "inputs": plain_data(dict(inputs or {}))}
        if policy.env_names:
            # Read when the run is set up, so a run sees one environment throughout.
            environ = os.environ
            self._scope["env"] = {name: environ[name] for name in policy.env_names if name in environ}
        self._nodes: dict[str, Node] = {}
        self._open = 0
        self._input_open = False
        self._aborting = False
        self._ended = False
        self._status = RunStatus.SUCCEEDED
        self._error: str | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._started_at = 0.0
        self._loop_thread = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # With a journal, a success waits for its commit before its dependents start.
        self._on_success: Callable[[Node], None] = self._propagate if barrier is None else barrier.hold
        self._barrier = barrier
        self._resume = resume
        for task in graph:
            self._nodes[task.id] = self._prepare(Node(task))
        self._open = len(self._nodes)
        if resume is not None:
            for node in self._nodes.values():
                self._restore(node)
        self._rewire()

    # -- public -----------------------------------------------------------------------

    async def run(self, stream: AsyncIterable[Task] | None = None) -> RunResult:
        """Run until every task has ended (and ``stream`` is exhausted); return the result."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._started_at = time.time()
        self._input_open = stream is not None
        self._emit(RunStarted(run_id=self.run_id, graph=self.graph, at=self._started_at))
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if self._resume is not None:
                    self._resumed(self._resume)
                if stream is not None:
                    self._feeder = tg.create_task(self._feed(stream), name=f"{self.run_id}:feed")
                for node in list(self._nodes.values()):
                    if node.remaining == 0 and node.result.status is _PENDING:
                        self._resolve(node)
                self._check_done()
                await self._done.wait()
        except asyncio.CancelledError:
            self._status = RunStatus.CANCELLED
            self._error = self._error or "run cancelled"
            raise
        finally:
            self._ended = True
            for node in self._nodes.values():
                if not node.result.status.is_terminal:
                    self._end(node, _CANCELLED, error=self._cancel_error(), propagate=False)
            result = self.result()
            self._emit(RunEnded(run_id=self.run_id, result=result))
        return result

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Stop the run: running steps are cancelled, pending ones never start."""
        if self._ended:
            return
        self._status = RunStatus.CANCELLED
        self._abort(reason)

    def add_task(self, task: Task) -> None:
        """Add one task to the running graph (its dependencies must already be known)."""
        if self._ended:
            raise GraphEditError(f"cannot add task {task.id!r}: the run has ended")
        problems: list[str] = []
        if task.id in self._nodes:
            problems.append(f"duplicate task id {task.id!r}: task ids must be unique")
        problems.extend(self.graph.task_problems(task, self._tools))
        problems.extend(self._target_problems(task))
        if problems:
            raise GraphValidationError(problems)
        self.graph.add(task)  # incremental: a new leaf cannot close a cycle
        node = self._nodes[task.id] = self._prepare(Node(task))
        self._open += 1
        for dep in task.dependencies:
            parent = self._nodes[dep]
            parent.dependents.append(node)
            if parent.propagated:
                self._count(node, parent)
            else:
                node.remaining += 1
        self._emit(TaskAdded(run_id=self.run_id, task=task))
        if node.remaining == 0 and self._tg is not None:
            self._resolve(node)

    def apply(self, edit: GraphEdit) -> None:
        """Apply ``edit`` atomically, or raise ``GraphEditError`` and change nothing."""
        if self._ended:
            raise GraphEditError("edit rejected: the run has ended")
        frozen = {tid for tid, n in self._nodes.items() if n.result.status is not _PENDING}
        new_graph = self.graph.apply(edit, frozen=frozen, tools=self._tools)
        target_problems = [p for t in (*edit.add, *edit.update) for p in self._target_problems(t)]
        if target_problems:
            raise GraphEditError("edit rejected, graph unchanged: " + "; ".join(target_problems))
        # Validated: commit. Nothing below can fail, so the edit is all-or-nothing.
        for tid in [tid for tid in self._nodes if tid not in new_graph]:
            del self._nodes[tid]
            self._open -= 1
        for task in new_graph:
            node = self._nodes.get(task.id)
            if node is None:
                self._nodes[task.id] = self._prepare(Node(task))
                self._open += 1
            elif node.task is not task:
                node.task = task
                node.result.tool = task.tool
                self._prepare(node)
        self.graph = new_graph
        self._rewire()
        self._emit(GraphEdited(run_id=self.run_id, edit=edit))
        if self._tg is not None:
            for node in list(self._nodes.values()):
                if node.remaining == 0 and node.result.status is _PENDING:
                    self._resolve(node)
        self._check_done()

    def release(self, nodes: list[Node]) -> None:
        """The barrier's callback: these successes are durable, start their dependents."""
        if self._ended:
            return
        for node in nodes:
            self._propagate(node)

    def barrier_failed(self, error: BaseException) -> None:
        """The barrier's callback: durability is lost, so the run stops (and fails)."""
        if self._ended:
            return
        if self._status is RunStatus.SUCCEEDED:
            self._status = RunStatus.FAILED
        self._abort(str(error))

    def result(self) -> RunResult:
        status = self._status
        if status is RunStatus.SUCCEEDED and any(
            n.result.status is _FAILED and not n.recovered for n in self._nodes.values()
        ):
            status = RunStatus.FAILED
        tasks = {tid: n.result for tid, n in self._nodes.items()}
        if self._resume is not None:
            # for_each items of a restored task have no node; their outcomes still count.
            for tid, previous in self._resume.restored.items():
                tasks.setdefault(tid, previous)
        return RunResult(
            run_id=self.run_id,
            status=status,
            tasks=tasks,
            started_at=self._started_at,
            ended_at=time.time(),
            error=self._error if status is not RunStatus.SUCCEEDED else None,
        )

    # -- resuming ---------------------------------------------------------------------

    def _restore(self, node: Node) -> None:
        """Give ``node`` its journaled outcome, or the attempts it already made."""
        assert self._resume is not None
        task_id = node.task.id
        previous = self._resume.restored.get(task_id)
        if previous is None:
            node.offset = self._resume.attempts.get(task_id, 0)
            node.gated = node.gated or node.offset > 0
            return
        result = node.result
        result.status = previous.status
        result.output = self._typed(node, previous.output)
        result.error = previous.error
        result.attempts = previous.attempts
        result.started_at = previous.started_at
        result.ended_at = previous.ended_at
        node.propagated = True
        self._open -= 1
        self._steps[task_id] = {
            "output": plain_data(previous.output),
            "status": result.status.value,
            "error": result.error.message if result.error else None,
        }

    @staticmethod
    def _typed(node: Node, output: Any) -> Any:
        # The journal holds JSON; the tool's declared return type makes it typed again.
        try:
            return node.tool.validate_result(output)
        except Exception:
            return output

    def _resumed(self, resume: ResumePoint) -> None:
        """Announce the resume, repeat the restored ends, fail the interrupted tasks."""
        self._emit(
            RunResumed(
                run_id=self.run_id,
                restored=tuple(resume.restored),
                retried=resume.retried,
                interrupted=tuple(resume.interrupted),
            )
        )
        for task_id, node in self._nodes.items():
            if task_id in resume.restored:
                self._echo(node)
        for task_id, error in resume.interrupted.items():
            stopped = self._nodes.get(task_id)
            if stopped is not None and stopped.result.status is _PENDING:
                self._end(stopped, _FAILED, error=error)

    def _echo(self, node: Node) -> None:
        """A restored task's end, for consumers of this run's events (not journaled again)."""
        result = node.result
        self._emit(
            TaskEnded(
                run_id=self.run_id,
                task_id=node.task.id,
                status=result.status,
                attempts=result.attempts,
                output=result.output,
                error=result.error,
                at=result.ended_at or time.time(),
            )
        )

    # -- readiness --------------------------------------------------------------------

    def _rewire(self) -> None:
        """Recompute dependents and counters from the graph (start-up and after edits)."""
        nodes = self._nodes
        for node in nodes.values():
            node.dependents = []
        for node in nodes.values():
            if node.result.status is not _PENDING:
                continue
            node.remaining = node.n_ok = node.n_skipped = node.n_failed = 0
            for dep in node.task.dependencies:
                parent = nodes[dep]
                if parent.propagated:
                    self._count(node, parent)
                else:
                    node.remaining += 1
        for node in nodes.values():
            for dep in node.task.dependencies:
                nodes[dep].dependents.append(node)

    @staticmethod
    def _count(node: Node, parent: Node) -> None:
        status = parent.result.status
        if status is _SUCCEEDED:
            node.n_ok += 1
        elif status is _SKIPPED:
            node.n_skipped += 1
        else:
            node.n_failed += 1
            node.blocked_by = node.blocked_by or parent.task.id

    def _propagate(self, node: Node) -> None:
        node.propagated = True
        status = node.result.status
        for child in node.dependents:
            if child.result.status is not _PENDING:
                continue
            # _count, inlined: this loop runs once per edge of the graph.
            if status is _SUCCEEDED:
                child.n_ok += 1
            elif status is _SKIPPED:
                child.n_skipped += 1
            else:
                child.n_failed += 1
                child.blocked_by = child.blocked_by or node.task.id
            child.remaining -= 1
            if child.remaining == 0:
                self._resolve(child)

    def _resolve(self, node: Node) -> None:
        """All dependencies ended: start, skip or cancel ``node``."""
        if self._aborting:
            self._end(node, _CANCELLED, error=self._cancel_error())
            return
        task = node.task
        if task.join == "all":
            blocked = node.n_failed > 0
            skip = not blocked and node.n_skipped > 0
        else:
            blocked = node.n_ok == 0 and node.n_failed > 0
            skip = node.n_ok == 0 and not blocked and node.n_skipped > 0
        if blocked:
            message = f"not run: dependency {node.blocked_by!r} did not succeed"
            self._end(node, _CANCELLED, error=TaskError(ErrorKind.UPSTREAM_FAILED, message, False))
            return
        if skip:
            self._end(node, _SKIPPED)
            return
        condition = node.condition
        if condition is not None:
            try:
                holds = condition.evaluate(self._scope)
            except Exception as exc:
                self._end(node, _FAILED, error=TaskError.from_exception(exc, retryable=False))
                return
            if not holds:
                self._end(node, _SKIPPED)
                return
        if node.items is not None:
            self._expand(node)
            return
        node.result.status = _READY
        self._emit(TaskReady(run_id=self.run_id, task_id=task.id))
        assert self._tg is not None
        node.handle = self._tg.create_task(self._execute(node))

    def _expand(self, node: Node) -> None:
        """Fan a ``for_each`` task out into one task per item; it ends when they all have."""
        task = node.task
        assert node.items is not None
        try:
            items = node.items.evaluate(self._scope)
        except Exception as exc:
            self._end(node, _FAILED, error=TaskError.from_exception(exc, retryable=False))
            return
        if not isinstance(items, (list, tuple)):
            message = (
                f"for_each of task {task.id!r} must evaluate to a list, got {type(items).__name__}"
                f" ({task.for_each})"
            )
            self._end(node, _FAILED, error=TaskError(ErrorKind.FOR_EACH_ERROR, message, False))
            return
        if len(items) > MAX_FAN_OUT:
            message = f"for_each of task {task.id!r} yielded {len(items)} items; the limit is {MAX_FAN_OUT}"
            self._end(node, _FAILED, error=TaskError(ErrorKind.FOR_EACH_ERROR, message, False))
            return
        node.result.status = _RUNNING
        node.result.started_at = time.time()
        node.result.attempts = 1
        self._emit(TaskStarted(run_id=self.run_id, task_id=task.id, attempt=1))
        if not items:
            self._end(node, _SUCCEEDED, output=[])
            return
        template = task.model_dump(exclude={"id", "for_each", "when", "join"})
        node.children = []
        node.children_left = len(items)
        for index, item in enumerate(items):
            child_task = Task.model_validate({**template, "id": f"{task.id}[{index}]"})
            child = Node(child_task)
            child.parent = node
            child.item = item
            self._prepare(child)
            self.graph.add(child_task)
            self._nodes[child_task.id] = child
            node.children.append(child)
            self._open += 1
            self._emit(TaskAdded(run_id=self.run_id, task=child_task))
        if self._resume is not None:
            self._expand_resumed(node, self._resume)
            return
        for child in node.children:
            self._resolve(child)

    def _expand_resumed(self, node: Node, resume: ResumePoint) -> None:
        """A fan-out again after a resume: items with a journaled outcome keep it."""
        for child in node.children:
            self._restore(child)
        for child in node.children:
            task_id = child.task.id
            if child.result.status is not _PENDING:
                self._echo(child)
                self._item_ended(node)
            elif task_id in resume.interrupted:
                self._end(child, _FAILED, error=resume.interrupted[task_id])
            else:
                self._resolve(child)

    def _item_ended(self, parent: Node) -> None:
        parent.children_left -= 1
        if parent.children_left:
            return
        children = parent.children
        failed = [c for c in children if c.result.status is _FAILED]
        if all(c.result.status is _SUCCEEDED for c in children):
            self._end(parent, _SUCCEEDED, output=[c.result.output for c in children])
        elif failed:
            first = failed[0]
            message = (
                f"{len(failed)} of {len(children)} items failed; first, {first.task.id}: {first.result.error}"
            )
            self._end(parent, _FAILED, error=TaskError(ErrorKind.ITEM_FAILED, message, False))
        else:
            self._end(parent, _CANCELLED, error=self._cancel_error())

    def _check_done(self) -> None:
        if self._open == 0 and not self._input_open:
            self._done.set()

    # -- ending tasks -----------------------------------------------------------------

    def _end(
        self,
        node: Node,
        status: TaskStatus,
        *,
        output: Any = None,
        error: TaskError | None = None,
        propagate: bool = True,
    ) -> None:
        result = node.result
        if result.status in _TERMINAL:  # terminal states are immutable
            return
        result.status = status
        result.output = output
        result.error = error
        result.ended_at = time.time()
        node.handle = None
        task_id = node.task.id
        self._steps[task_id] = {
            "output": plain_data(output),
            "status": status.value,
            "error": error.message if error else None,
        }
        self._open -= 1
        self._emit(
            TaskEnded(
                run_id=self.run_id,
                task_id=task_id,
                status=status,
                attempts=result.attempts,
                output=output,
                error=error,
                at=result.ended_at,
            )
        )
        if status is _FAILED and not node.recovered:
            if self._error is None:
                self._error = f"task {task_id!r} failed: {error}"
            if self._failure_policy != "continue":
                self._abort(self._error)
        if propagate:
            if status is _SUCCEEDED:
                self._on_success(node)
            else:
                self._propagate(node)
        if node.parent is not None:
            self._item_ended(node.parent)
        self._check_done()

    def _cancel_error(self) -> TaskError:
        reason = self._error or "run cancelled"
        return TaskError(ErrorKind.CANCELLED, f"cancelled: {reason}", False)

    def _abort(self, reason: str) -> None:
        """Cancel everything still running or waiting; used by fail-fast and ``cancel()``."""
        if self._aborting:
            return
        self._aborting = True
        if self._error is None:
            self._error = reason
        if self._feeder is not None:
            self._feeder.cancel()
        for node in list(self._nodes.values()):
            if node.handle is not None:
                node.handle.cancel()
                if node.result.status is _READY:
                    # Its coroutine may not have started, and a task cancelled before its
                    # first step never runs its own except-block: end it here.
                    self._end(node, _CANCELLED, error=self._cancel_error(), propagate=False)
            elif node.result.status is _PENDING:
                self._end(node, _CANCELLED, error=self._cancel_error(), propagate=False)
        self._check_done()

    # -- executing --------------------------------------------------------------------

    async def _execute(self, node: Node) -> None:
        try:
            try:
                limits = node.limits
                if limits is None:
                    output = await self._attempts(node)
                else:
                    async with limits:
                        output = await self._attempts(node)
                # Results are typed whichever executor produced them (a device sends JSON).
                output = node.tool.validate_result(output)
            except ApprovalRefused as failure:
                await self._fail(node, failure.error)
                return
            except Exception as exc:  # the tool's (or the expression's) error
                await self._fail(node, TaskError.from_exception(exc, retryable=is_retryable(exc)))
                return
            self._end(node, _SUCCEEDED, output=output)
        except asyncio.CancelledError:
            self._end(node, _CANCELLED, error=self._cancel_error())
            raise
        except Exception as exc:
            # A bug of ours (or a replanner's) must fail this task, not crash the run.
            _log.exception("internal error while running task %r", node.task.id)
            self._end(node, _FAILED, error=TaskError.from_exception(exc, retryable=False))

    def _attempts(self, node: Node) -> Awaitable[Any]:
        """The attempts of one task: its only attempt, or the gated path (scheduling/gates.py)."""
        result = node.result
        result.status = _RUNNING
        result.started_at = time.time()
        if node.gated:
            return self._gates.attempts(node)
        # The common case: one attempt, awaited directly. A plain function returning the
        # coroutine saves a coroutine frame per task; tenacity would cost more than a
        # no-op task.
        return self._attempt(node, 1)

    def _attempt(self, node: Node, attempt: int) -> Awaitable[Any]:
        """Start one attempt: the awaitable the executor returns, under the task's timeout.

        A plain function, not a coroutine: without a timeout the caller awaits the tool's
        own coroutine directly, as a hand-written asyncio program would.
        """
        task = node.task
        tool = node.tool
        node.result.attempts = attempt
        self._emit(TaskStarted(run_id=self.run_id, task_id=task.id, attempt=attempt))
        context = self._context(task, tool, attempt) if tool.takes_context else None
        if attempt == 1 and node.kwargs is not None:
            call = ToolCall(self.run_id, task, tool, node.kwargs, attempt, context, True)
        else:
            # Retries validate afresh, so a tool that mutated its arguments gets clean ones.
            args = self._render_args(node) if node.dynamic_args else task.args
            call = ToolCall(self.run_id, task, tool, args, attempt, context)
        if node.timeout is None:
            return node.executor.execute(call)
        return timed(node, call)

    def _prepare(self, node: Node) -> Node:
        """Resolve a task's effective policy once: task field, else tool default, else ours."""
        task = node.task
        tool = node.tool = self._tools.get(task.tool)
        retries = task.retries if task.retries is not None else tool.retries
        policy = self._policy
        node.retries = policy.default_retries if retries is None else retries
        node.timeout = task.timeout or tool.timeout or policy.default_timeout
        approval = task.needs_approval
        node.needs_approval = tool.needs_approval if approval is None else approval
        idempotent = task.idempotent if task.idempotent is not None else tool.idempotent
        node.write_ahead = self._barrier is not None and idempotent is False
        node.gated = bool(node.needs_approval or node.retries or node.offset or node.write_ahead)
        node.executor = self._executors["local" if task.is_local else "device"]
        node.limits = self._limits.for_task(task)
        node.compile()
        node.kwargs = None
        if not node.dynamic_args and task.is_local:
            # Constant arguments cannot change during the run: validate them now, once,
            # instead of on the dispatch path. Invalid ones are left for the call to report.
            try:
                node.kwargs = tool.validate_arguments(task.args)
            except ToolError:
                node.kwargs = None
        return node

    def _render_args(self, node: Node) -> dict[str, Any]:
        args = dict(node.task.args)
        scope = self._scope if node.parent is None else {**self._scope, "item": node.item}
        for key, value in node.dynamic_args:
            args[key] = value.render(scope)
        return args

    def _context(self, task: Task, tool: Tool, attempt: int) -> ToolContext:
        def report(fraction: float | None, message: str) -> None:
            event = TaskProgress(
                run_id=self.run_id, task_id=task.id, attempt=attempt, fraction=fraction, message=message
            )
            if threading.get_ident() == self._loop_thread:
                self._emit(event)
            elif self._loop is not None:
                self._loop.call_soon_threadsafe(self._emit, event)

        logger = logging.LoggerAdapter(
            logging.getLogger(f"stepweave.tools.{tool.name}"),
            {"run_id": self.run_id, "task_id": task.id, "attempt": attempt},
        )
        return ToolContext(self.run_id, task.id, attempt, report, logger, self._prompter)

    async def _fail(self, node: Node, error: TaskError) -> None:
        if self._failure_policy == "replan" and self._replanner is not None and not self._aborting:
            node.recovered = await self._replan(node, error)
        self._end(node, _FAILED, error=error)

    async def _replan(self, node: Node, error: TaskError) -> bool:
        request = ReplanRequest(
            run_id=self.run_id,
            graph=self.graph,
            results={tid: n.result for tid, n in self._nodes.items()},
            failed_task=node.task.id,
            error=error,
        )
        assert self._replanner is not None
        try:
            edit = await self._replanner(request)
            if edit is None or edit.is_empty:
                return False
            self.apply(edit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("replanning after %r failed: %s", node.task.id, exc)
            self._error = f"task {node.task.id!r} failed: {error}; replanning failed: {exc}"
            return False
        return True

    # -- streaming input --------------------------------------------------------------

    async def _feed(self, stream: AsyncIterable[Task]) -> None:
        try:
            async for task in stream:
                self.add_task(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = self._error or f"task stream failed: {type(exc).__name__}: {exc}"
            self._status = RunStatus.FAILED
            if self._failure_policy != "continue":
                self._abort(self._error)
        finally:
            self._input_open = False
            self._check_done()

    def _target_problems(self, task: Task) -> list[str]:
        if task.is_local or "device" in self._executors:
            return []
        return [
            f"task {task.id!r} targets {task.target!r} but no device executor is configured "
            "(pass broker= to the Orchestrator, or --broker on the command line)"
        ]
