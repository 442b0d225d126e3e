"""``Orchestrator`` (configuration, reusable) and ``Run`` (one execution, an async context).

```python
result = await Orchestrator(tools=[fetch, merge]).run(graph)

async with orchestrator.start(graph) as run:    # a handle, to edit or cancel a live run
    run.apply(GraphEdit(add=[...]))
    result = await run.wait()
```
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from tools import Tool, ToolRegistry

from .errors import GraphEditError, GraphValidationError
from .events import Event, RunEnded
from .executors import Executor, LocalExecutor
from .graph import GraphEdit, Task, TaskGraph
from .result import RunResult
from .scheduler import Approver, FailurePolicy, Replanner, Scheduler

__all__ = ["GraphSource", "Orchestrator", "Run"]

#: What a run accepts: a graph, a list of tasks, or an async stream of tasks (a planner).
GraphSource = TaskGraph | Iterable[Task] | AsyncIterable[Task]


class Orchestrator:
    """Holds tools and policy; each ``run`` executes one graph with them.

    Args:
        tools: ``@tool`` functions (or plain functions) or a ``ToolRegistry``.
        max_concurrency: most steps running at once in a run (``None``: no cap).
        tool_limits: most concurrent calls per tool name, e.g. ``{"http": 4}``.
        failure_policy: ``fail_fast`` (cancel the rest on the first failure),
            ``continue`` (independent branches finish) or ``replan`` (ask ``replanner``).
        default_timeout: seconds per attempt when neither task nor tool sets one.
        default_retries: retries when neither task nor tool sets them.
        default_backoff: first retry delay in seconds (doubles per retry, with jitter).
        approver: decides whether a ``needs_approval`` task may run.
        replanner: called with a ``ReplanRequest`` when a task fails, under ``replan``.
        executors: extra executors by name; ``"device"`` runs non-local targets.
        env: environment variable names expressions may read as ``env.NAME``.
        max_threads: worker threads for synchronous tools.
    """

    def __init__(
        self,
        tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] = (),
        *,
        max_concurrency: int | None = None,
        tool_limits: Mapping[str, int] | None = None,
        failure_policy: FailurePolicy = "fail_fast",
        default_timeout: float | None = None,
        default_retries: int = 0,
        default_backoff: float = 0.2,
        approver: Approver | None = None,
        replanner: Replanner | None = None,
        executors: Mapping[str, Executor] | None = None,
        env: Sequence[str] = (),
        max_threads: int = 32,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if failure_policy not in ("fail_fast", "continue", "replan"):
            raise ValueError(
                f"failure_policy must be 'fail_fast', 'continue' or 'replan', got {failure_policy!r}"
            )
        if failure_policy == "replan" and replanner is None:
            raise ValueError("failure_policy='replan' needs a replanner=")
        for name, limit in (tool_limits or {}).items():
            if limit < 1:
                raise ValueError(f"tool_limits[{name!r}] must be >= 1, got {limit}")
        self.tools = ToolRegistry.coerce(tools)
        self.max_concurrency = max_concurrency
        self.tool_limits = dict(tool_limits or {})
        self.failure_policy: FailurePolicy = failure_policy
        self.default_timeout = default_timeout
        self.default_retries = default_retries
        self.default_backoff = default_backoff
        self.approver = approver
        self.replanner = replanner
        self.env_names = tuple(env)
        self._local = LocalExecutor(max_threads=max_threads)
        self._executors: dict[str, Executor] = {"local": self._local, **(executors or {})}

    def start(
        self,
        source: GraphSource,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Validate ``source`` and return a ``Run`` to enter with ``async with``.

        Raises ``GraphValidationError`` (every problem at once) before anything runs.
        """
        stream: AsyncIterable[Task] | None = None
        if isinstance(source, TaskGraph):
            graph = source
        elif isinstance(source, AsyncIterable):
            graph, stream = TaskGraph(), source
        else:
            graph = TaskGraph(source)
        problems = graph.problems(self.tools)
        if "device" not in self._executors:
            problems += [
                f"task {t.id!r} targets {t.target!r} but no device executor is configured "
                "(pass broker= to the Orchestrator, or --broker on the command line)"
                for t in graph
                if not t.is_local
            ]
        if problems:
            raise GraphValidationError(problems, source=graph.name)
        # Copy the caller's graph: edits during the run must not change their object.
        graph = TaskGraph(graph, name=graph.name)
        return Run(self, graph, stream, inputs=inputs, run_id=run_id or uuid.uuid4().hex[:12])

    async def run(
        self,
        source: GraphSource,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Run to the end and return the result (a failed run is returned, not raised)."""
        async with self.start(source, inputs=inputs, run_id=run_id) as run:
            return await run.wait()

    async def run_stream(
        self,
        source: GraphSource,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[Event]:
        """Yield every event as it happens; the last is ``RunEnded`` carrying the result."""
        async with self.start(source, inputs=inputs, run_id=run_id) as run:
            async for event in run.events():
                yield event

    def run_sync(
        self,
        source: GraphSource,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """``run`` for scripts without an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(source, inputs=inputs, run_id=run_id))
        raise RuntimeError("run_sync() cannot be called from a running event loop; use await run()")

    def _scheduler(self, run: Run, graph: TaskGraph, inputs: Mapping[str, Any] | None) -> Scheduler:
        env = {name: os.environ[name] for name in self.env_names if name in os.environ}
        return Scheduler(
            graph,
            tools=self.tools,
            run_id=run.run_id,
            emit=run._emit,
            executors=self._executors,
            inputs=inputs,
            env=env if self.env_names else None,
            max_concurrency=self.max_concurrency,
            tool_limits=self.tool_limits,
            failure_policy=self.failure_policy,
            default_timeout=self.default_timeout,
            default_retries=self.default_retries,
            default_backoff=self.default_backoff,
            approver=self.approver,
            replanner=self.replanner,
        )


class Run:
    """One execution of a graph. Use as ``async with``; leaving the block cancels it if unfinished.

    Every event is kept, so ``events()`` may be called at any time and sees the run from
    its start.
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        graph: TaskGraph,
        stream: AsyncIterable[Task] | None,
        *,
        inputs: Mapping[str, Any] | None,
        run_id: str,
    ) -> None:
        self.run_id = run_id
        self._history: list[Event] = []
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._stream = stream
        self._scheduler = orchestrator._scheduler(self, graph, inputs)
        self._task: asyncio.Task[RunResult] | None = None
        self._entered = False

    @property
    def graph(self) -> TaskGraph:
        """The graph as it is now (edits and streamed tasks included)."""
        return self._scheduler.graph

    @property
    def result(self) -> RunResult | None:
        """The result once the run has ended, else ``None``."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.result()

    async def __aenter__(self) -> Run:
        if self._entered:
            raise RuntimeError("a Run can be entered only once; call Orchestrator.start() again")
        self._entered = True
        self._task = asyncio.create_task(
            self._scheduler.run(self._stream), name=f"stepweave-run-{self.run_id}"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Ours, not the caller's: only swallow it if the caller isn't being cancelled.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def _require_started(self) -> asyncio.Task[RunResult]:
        if self._task is None:
            raise RuntimeError("the run has not started: use `async with orchestrator.start(...)`")
        return self._task

    async def wait(self) -> RunResult:
        """Wait for the run to end and return its result."""
        return await self._require_started()

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Cancel running steps, start no more; ``wait()`` then returns a cancelled result."""
        self._scheduler.cancel(reason)

    def apply(self, edit: GraphEdit) -> None:
        """Apply a ``GraphEdit`` atomically; ``GraphEditError`` leaves the graph unchanged."""
        self._scheduler.apply(edit)

    def add_task(self, task: Task) -> None:
        """Add one task whose dependencies are already in the graph."""
        try:
            self._scheduler.add_task(task)
        except GraphValidationError as exc:
            raise GraphEditError(str(exc)) from None

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of the run, from its start, until ``RunEnded``."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        # Snapshot and subscribe in one synchronous step so no event falls in between.
        backlog = list(self._history)
        self._subscribers.append(queue)
        try:
            for event in backlog:
                yield event
                if isinstance(event, RunEnded):
                    return
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, RunEnded):
                    return
        finally:
            self._subscribers.remove(queue)
