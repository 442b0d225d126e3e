"""``Orchestrator`` (configuration, reusable) and ``Run`` (one execution, an async context).

```python
result = await Orchestrator(tools=[fetch, merge]).run(graph)

async with orchestrator.start(graph) as run:    # a handle, to edit or cancel a live run
    run.apply(GraphEdit(add=[...]))
    result = await run.wait()

orchestrator = Orchestrator(tools=[...], journal=Journal("runs.sqlite3"))
async with orchestrator.resume(run_id) as run:  # after a crash: finished tasks are kept
    result = await run.wait()

async with Orchestrator(tools=[...]) as orchestrator:  # closes its thread pool on exit
    await orchestrator.run(graph)
```
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal

from tools import Prompter, Tool, ToolRegistry
from tools.threads import use_runner

from .errors import ErrorKind, GraphEditError, GraphValidationError, ResumeError
from .events import Event, RunEnded
from .executors import Executor, LocalExecutor
from .graph import GraphEdit, Task, TaskGraph, TaskStatus
from .journal import Journal
from .journal.writer import RunRecorder
from .result import RunResult, TaskError
from .scheduler import Approver, FailurePolicy, Replanner, ResumePoint, RunPolicy, Scheduler
from .telemetry.hook import observe

if TYPE_CHECKING:
    from .devices import BrokerSettings, DeviceExecutor

__all__ = ["GraphSource", "InflightPolicy", "Orchestrator", "Run"]

#: What a run accepts: a graph, a list of tasks, or an async stream of tasks (a planner).
GraphSource = TaskGraph | Iterable[Task | Mapping[str, Any]] | AsyncIterable[Task]
#: On resume, what to do with a task that was running when the run stopped and is not
#: idempotent: ``retry`` it, ``fail`` it, or ask a callback (True means retry).
InflightPolicy = Literal["retry", "fail"] | Callable[[Task], Awaitable[bool]]

_KEPT = (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED)


class Orchestrator:
    """Holds tools and policy; each ``run`` executes one graph with them.

    Lifetime: the orchestrator opens a thread pool for synchronous tools (on first use) and,
    with ``broker=``, a device connection; it closes them on leaving ``async with
    Orchestrator(...) as orchestrator:``, or on ``await orchestrator.aclose()``.
    ``run_sync`` closes them before it returns. Without either, runs still work; the
    pool's idle threads then live until the process ends. A closed orchestrator may run
    again (it reopens what it needs). Executors passed in ``executors=`` belong to the
    caller, who closes them.

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
        prompter: asks the operator for the tools (``ctx.prompter``: the ``approve`` tool,
            a runbook's questions); default: this process's terminal, approving nothing.
        replanner: called with a ``ReplanRequest`` when a task fails, under ``replan``.
        executors: extra executors by name; ``"device"`` runs non-local targets.
        broker: shorthand for a ``"device"`` executor on this MQTT broker (URL or
            ``BrokerSettings``): each run connects while it runs (``orchestrator.devices``).
        env: environment variable names expressions may read as ``env.NAME``.
        max_threads: worker threads for synchronous tools.
        journal: record every run durably here (a ``Journal``, a file path or a
            ``postgresql://`` URL), which
            makes ``resume`` possible. ``None`` (the default) records nothing.
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
        prompter: Prompter | None = None,
        replanner: Replanner | None = None,
        executors: Mapping[str, Executor] | None = None,
        env: Sequence[str] = (),
        max_threads: int = 32,
        journal: Journal | str | os.PathLike[str] | None = None,
        broker: str | BrokerSettings | None = None,
    ) -> None:
        self.tools = ToolRegistry.coerce(tools)
        #: Every run's policy, checked here once (``ValueError`` names the bad argument).
        self.policy = RunPolicy(
            max_concurrency=max_concurrency,
            tool_limits=tool_limits or {},
            failure_policy=failure_policy,
            default_timeout=default_timeout,
            default_retries=default_retries,
            default_backoff=default_backoff,
            approver=approver,
            prompter=prompter,
            replanner=replanner,
            env_names=tuple(env),
        )
        self._local = LocalExecutor(max_threads=max_threads)
        self._executors: dict[str, Executor] = {"local": self._local, **(executors or {})}
        #: The device executor made from ``broker=``: runs enter it while they run.
        self._devices: DeviceExecutor | None = None
        if broker is not None:
            if "device" in self._executors:
                raise ValueError("pass broker= or executors={'device': ...}, not both")
            # Imported here: the MQTT client is only needed by orchestrators that use devices.
            from .devices import DeviceExecutor

            self._devices = DeviceExecutor(broker=broker)
            self._executors["device"] = self._devices
        self._stack: AsyncExitStack | None = None
        self.journal = journal if journal is None or isinstance(journal, Journal) else Journal(journal)

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> Orchestrator:
        if self._stack is not None:
            raise RuntimeError("an Orchestrator is reusable but not reentrant: it is already entered")
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self.aclose)
            if self._devices is not None:
                # One connection for every run inside the block (runs share an entered executor).
                await stack.enter_async_context(self._devices)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Close what this orchestrator opened: the sync-tool threads (idle ones exit now;
        one still running a tool finishes on its own). Runs still running are not stopped."""
        await self._local.aclose()

    @property
    def executors(self) -> Mapping[str, Executor]:
        """The executors runs dispatch to, by name: ``local``, and ``device`` if configured."""
        return MappingProxyType(self._executors)

    @property
    def local_executor(self) -> LocalExecutor:
        """Runs this orchestrator's synchronous tools (and ``tools.threads.run_sync``) in threads."""
        return self._local

    @property
    def devices(self) -> DeviceExecutor | None:
        """The device executor made from ``broker=`` (``None`` without one); runs enter it."""
        return self._devices

    # -- runs ----------------------------------------------------------------------------

    def start(
        self,
        source: GraphSource,
        *,
        inputs: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Run:
        """Validate ``source`` and return a ``Run`` to enter with ``async with``.

        Raises ``GraphValidationError`` (every problem at once) before anything runs.
        ``metadata`` (JSON-ready) is stored with the run in the journal, if there is one.
        """
        stream: AsyncIterable[Task] | None = None
        if isinstance(source, TaskGraph):
            graph = source
        elif isinstance(source, AsyncIterable):
            graph, stream = TaskGraph(), source
        else:
            graph = TaskGraph(source)
        problems = self._problems(graph)
        if problems:
            raise GraphValidationError(problems, source=graph.name)
        # Copy the caller's graph: edits during the run must not change their object.
        graph = TaskGraph(graph, name=graph.name)
        run_id = run_id or uuid.uuid4().hex[:12]
        recorder = None
        if self.journal is not None:
            # Inputs are kept so that a resume needs nothing but the run id and the tools.
            meta = {**(metadata or {}), "inputs": dict(inputs or {})}
            recorder = self.journal.recorder(run_id, graph, meta=meta)
        return Run(self, graph, stream, inputs=inputs, run_id=run_id, recorder=recorder)

    def resume(self, run_id: str, *, retry_inflight: InflightPolicy = "fail") -> Run:
        """Rebuild run ``run_id`` from the journal; return a ``Run`` to enter with ``async with``.

        Tasks that succeeded (or were skipped) keep their outcome and do not run again;
        failed ones, and ones cancelled before they started, run again. Tasks in flight (an
        attempt started and never completed) are dispatched again with the same
        idempotency key and the attempt number counting on; one that is not marked
        idempotent is handled by ``retry_inflight``. See docs/durability.md.

        Raises ``RunNotFound``, ``ResumeError`` (the run succeeded, or still runs),
        ``JournalError`` (unreadable journal) or ``GraphValidationError`` (a tool is missing).
        """
        if self.journal is None:
            raise ValueError("resume() needs a journal: Orchestrator(journal=...)")
        if retry_inflight not in ("retry", "fail") and not callable(retry_inflight):
            raise ValueError(f"retry_inflight must be 'retry', 'fail' or a callable, got {retry_inflight!r}")
        journal = self.journal
        history = journal.load(run_id)
        record = history.record
        where = f"{journal.where}: run {run_id!r}"
        if record.status == "running":
            raise ResumeError(
                f"{where} is still running (process {record.owner}); it cannot be resumed twice"
            )
        if record.status == "succeeded":
            raise ResumeError(f"{where} already succeeded: there is nothing to resume")
        graph = history.graph
        problems = self._problems(graph)
        if problems:
            raise GraphValidationError(problems, source=f"resuming run {run_id}")
        restored = {tid: r for tid, r in history.results.items() if r.status in _KEPT}
        attempts = {
            tid: r.attempts for tid, r in history.results.items() if tid not in restored and r.attempts
        }
        point = ResumePoint(restored=restored, attempts=attempts)
        inflight = [history.task(tid) for tid in history.in_flight()]
        recorder = journal.resumer(run_id, previous_owner=record.owner, echoes=restored.keys())
        inputs = record.meta.get("inputs") or {}
        return Run(
            self,
            TaskGraph(graph, name=graph.name),
            None,
            inputs=inputs,
            run_id=run_id,
            recorder=recorder,
            resume=point,
            inflight=inflight,
            inflight_policy=retry_inflight,
        )

    def _problems(self, graph: TaskGraph) -> list[str]:
        """Every reason ``graph`` cannot run with these tools and executors."""
        problems = graph.problems(self.tools)
        if "device" not in self._executors:
            problems += [
                f"task {t.id!r} targets {t.target!r} but no device executor is configured "
                "(pass broker= to the Orchestrator, or --broker on the command line)"
                for t in graph
                if not t.is_local
            ]
        return problems

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
        """``run`` for scripts without an event loop; closes what it opened before returning."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_and_close(source, inputs=inputs, run_id=run_id))
        raise RuntimeError("run_sync() cannot be called from a running event loop; use await run()")

    async def _run_and_close(
        self, source: GraphSource, *, inputs: Mapping[str, Any] | None, run_id: str | None
    ) -> RunResult:
        try:
            return await self.run(source, inputs=inputs, run_id=run_id)
        finally:
            await self.aclose()


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
        recorder: RunRecorder | None = None,
        resume: ResumePoint | None = None,
        inflight: Sequence[Task] = (),
        inflight_policy: InflightPolicy = "fail",
    ) -> None:
        self.run_id = run_id
        self._history: list[Event] = []
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._stream = stream
        self._recorder = recorder
        self._orchestrator = orchestrator
        self._resume = resume
        #: Where every event of the run goes (the scheduler's and ``publish``'s).
        self._sink = observe(self._emit if recorder is None else self._emit_journaled, run_id)
        self._scheduler = Scheduler(
            graph,
            tools=orchestrator.tools,
            run_id=run_id,
            emit=self._sink,
            executors=orchestrator.executors,
            policy=orchestrator.policy,
            inputs=inputs,
            barrier=recorder,
            resume=resume,
        )
        self._task: asyncio.Task[RunResult] | None = None
        self._entered = False
        #: What the run entered (the device executor), left in ``__aexit__``.
        self._stack = AsyncExitStack()
        #: On resume: the tasks that were running when the run stopped, and what to do with them.
        self._inflight = tuple(inflight)
        self._inflight_policy = inflight_policy

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
        async with AsyncExitStack() as stack:
            devices = self._orchestrator.devices
            if devices is not None:
                # Connects on the first concurrent run, shared after (and inside the
                # orchestrator's own ``async with``, already connected).
                await stack.enter_async_context(devices)
            await self._begin()
            self._stack = stack.pop_all()
        return self

    async def _begin(self) -> Run:
        recorder = self._recorder
        if recorder is None:
            self._task = asyncio.create_task(
                self._scheduler.run(self._stream),
                name=f"stepweave-run-{self.run_id}",
                context=self._context(),
            )
            return self
        if self._inflight:
            await self._decide_inflight()
        # Opening checks the file's format and registers (or claims back) the run: a bad
        # journal fails here, before any step has run.
        await recorder.start()
        scheduler = self._scheduler
        recorder.bind(asyncio.get_running_loop(), scheduler.release, scheduler.barrier_failed)
        self._task = asyncio.create_task(
            self._journaled(recorder), name=f"stepweave-run-{self.run_id}", context=self._context()
        )
        return self

    def _context(self) -> contextvars.Context:
        # The run's task and every step it starts inherit it: blocking work a tool starts
        # itself (``tools.threads.run_sync``) shares the orchestrator's tool threads.
        context = contextvars.copy_context()
        context.run(use_runner, self._orchestrator.local_executor.run_sync)
        return context

    async def _journaled(self, recorder: RunRecorder) -> RunResult:
        try:
            return await self._scheduler.run(self._stream)
        finally:
            # Every event, RunEnded included, is committed before the run counts as over.
            await recorder.close()

    async def _decide_inflight(self) -> None:
        """Apply the in-flight policy: idempotent tasks run again; others as it says."""
        point = self._resume
        assert point is not None
        tools = self._orchestrator.tools
        retried: list[str] = []
        for task in self._inflight:
            idempotent = task.idempotent if task.idempotent is not None else tools.get(task.tool).idempotent
            policy = self._inflight_policy
            if idempotent or policy == "retry" or (callable(policy) and await policy(task)):
                retried.append(task.id)
                continue
            point.interrupted[task.id] = TaskError(
                ErrorKind.INTERRUPTED,
                f"task {task.id!r} (tool {task.tool!r}) was running when run {self.run_id} stopped, and it "
                "is not marked idempotent: whether its effect happened is unknown, so it was not repeated. "
                "Check it, then resume with --retry-inflight retry (or mark the step idempotent: true)",
                False,
            )
        point.retried = tuple(retried)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        try:
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    # Ours, not the caller's: only swallow it if the caller isn't being cancelled.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
        finally:
            await self._stack.aclose()

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

    def publish(self, event: Event) -> None:
        """Add an event of your own to the run's stream (a planner's model calls and their
        usage, say): ``events()`` subscribers see it, and the journal records it."""
        if event.run_id != self.run_id:
            raise ValueError(f"event of run {event.run_id!r} published into run {self.run_id!r}")
        self._sink(event)

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _emit_journaled(self, event: Event) -> None:
        self._history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        recorder = self._recorder
        assert recorder is not None
        recorder.record(event)

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
