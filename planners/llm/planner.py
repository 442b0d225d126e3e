"""``LLMPlanner``: requests in, running task graphs out, answers back.

```python
planner = LLMPlanner()                               # OPENAI_API_KEY / OPENAI_BASE_URL / STEPWEAVE_MODEL
orchestrator = Orchestrator(tools, failure_policy="continue")
result = await planner.ask("Compare the weather in Paris and Rome", orchestrator)
print(result.answer, result.usage.total_tokens)
```

The plan streams from the model and its tasks start as they are parsed; a joiner then
finishes with an answer or asks for a replan (``max_replans``). Under the engine's
``replan`` failure policy, ``planner.replanner`` also recovers a failed task at once.
Use ``continue`` or ``replan``: under ``fail_fast`` the first tool failure ends the run
before the joiner can replan (the joiner still answers from what finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

from openai import AsyncOpenAI

from orchestrator import (
    Event,
    GraphEdit,
    Orchestrator,
    PlannerError,
    Replanner,
    ReplanRequest,
    RunEnded,
    Target,
    Task,
    TaskGraph,
)
from tools import Tool, ToolRegistry

from .assemble import PlanAssembler
from .chat import DEFAULT_MAX_TOKENS, ChatCaller, JsonRequest
from .config import MODEL_ENV, NO_KEY, LLMConfigError, check_configuration
from .events import AskEnded
from .formats import SHARED_MEMORY, FormatMode, ServerMemory
from .messages import plan_messages
from .plan_call import PlanCall
from .recovery import Recovery
from .result import AskResult
from .schema import plan_schema
from .session import AskSession
from .settings import DEFAULT_MAX_PLAN_BYTES, DEFAULT_MAX_PLAN_TASKS, Placement, PlannerSettings
from .usage import CallKind, Pricing, Usage

#: What ``plan``, ``plan_stream`` and ``replanner_for`` take: a registry, or the tools themselves.
ToolsLike = ToolRegistry | Iterable[Tool | Callable[..., Any]]

__all__ = ["EventHandler", "LLMPlanner", "ResponseFormatChoice"]

#: ``auto`` probes json_schema → json_object → prompt per server; the others force one.
ResponseFormatChoice = Literal["auto", "json_schema", "json_object", "prompt"]
#: Called with every event of an ``ask``; may be a coroutine function.
EventHandler = Callable[[Event], None] | Callable[[Event], Awaitable[None]]


class LLMPlanner:
    """Plans with a model behind any OpenAI-compatible API.

    Args:
        model: model name; default ``STEPWEAVE_MODEL``, then ``gpt-4o-mini`` for OpenAI.
        client: an ``AsyncOpenAI`` to use (its own retries are turned off: ours apply).
        base_url, api_key: where the server is; default ``OPENAI_BASE_URL``/``OPENAI_API_KEY``.
        stream: stream plans and start tasks as they are parsed; joiner and replan answers
            are streamed too, so the timeouts below cover them (``False``: plan first, and
            every answer is read whole, bounded only by ``timeout``).
        response_format: how to ask for JSON (``auto`` falls back and remembers per server).
        max_repairs: repair calls per plan or joiner answer that was invalid.
        max_replans: new plans the joiner (or the failure hook) may ask for per ask/run.
        api_retries: retries of transient API errors (429, 5xx, timeouts) per call.
        retry_wait: first backoff in seconds (doubles, with jitter; ``Retry-After`` wins).
        timeout: seconds per API request.
        first_token_timeout: seconds a streamed call may send nothing before it fails
            (naming the server); ``idle_timeout``: seconds a stream may stall mid-answer.
        max_parallel_calls: model calls in flight at once on this planner's server (1:
            llama.cpp's server cuts a running stream off when another request arrives).
        temperature: sent only when set (some models reject it).
        max_tokens: completion-token cap per call, one number or per call kind
            (``{"plan": 1536, "join": 1024}``; default ``DEFAULT_MAX_TOKENS``).
        result_limit: characters of each task's output shown to the model.
        instructions: extra text for the planner's system prompt.
        pricing: turns token counts into cost in ``Usage.cost``.
        server_memory: where per-server format support is remembered (default: shared).
        target: where every planned task runs: ``"local"``, ``"any-device"`` or a device
            selector (the model plans what to do; the caller decides where).
        placement: where each planned task runs, by its tool, instead of ``target``; the
            prompt says where each tool runs, and a task it finds no place for (a device
            that went away) goes back to the model (see ``Placement``).
        max_plan_bytes, max_plan_tasks: caps on one plan (or replan) answer; beyond one,
            planning stops with a ``PlannerError`` naming it.
        require_approval: a plan is untrusted input, so a planned task that may change
            something (its tool is not declared read-only for its arguments) is marked
            ``needs_approval`` and the Orchestrator's ``approver`` decides whether it runs
            (without one, it fails). ``False`` runs plans as the model wrote them.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        client: AsyncOpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        stream: bool = True,
        response_format: ResponseFormatChoice = "auto",
        max_repairs: int = 2,
        max_replans: int = 2,
        api_retries: int = 3,
        retry_wait: float = 0.5,
        timeout: float = 120.0,
        temperature: float | None = None,
        max_tokens: int | Mapping[CallKind, int] | None = DEFAULT_MAX_TOKENS,
        first_token_timeout: float | None = 60.0,
        idle_timeout: float | None = 30.0,
        max_parallel_calls: int = 1,
        result_limit: int = 2000,
        instructions: str = "",
        pricing: Pricing | None = None,
        server_memory: ServerMemory | None = None,
        target: Target = "local",
        placement: Placement | None = None,
        max_plan_bytes: int = DEFAULT_MAX_PLAN_BYTES,
        max_plan_tasks: int = DEFAULT_MAX_PLAN_TASKS,
        require_approval: bool = True,
    ) -> None:
        if api_retries < 0:
            raise ValueError(f"api_retries must be >= 0, got {api_retries}")
        if client is None:
            config = check_configuration(model, base_url=base_url, api_key=api_key)
            client = AsyncOpenAI(
                api_key=config.api_key or NO_KEY, base_url=config.base_url, max_retries=0, timeout=timeout
            )
            self._owns_client = True
            model = config.model
        else:
            client = client.with_options(max_retries=0, timeout=timeout)
            self._owns_client = False
            model = model or os.environ.get(MODEL_ENV)
            if not model:
                raise LLMConfigError(f"no model named: pass model= or set {MODEL_ENV}")
        self.settings = PlannerSettings(
            stream=stream,
            max_repairs=max_repairs,
            max_replans=max_replans,
            result_limit=result_limit,
            instructions=instructions,
            pricing=pricing,
            target=target,
            placement=placement,
            max_plan_bytes=max_plan_bytes,
            max_plan_tasks=max_plan_tasks,
            require_approval=require_approval,
        )
        forced = None if response_format == "auto" else FormatMode(response_format)
        self._caller = ChatCaller(
            client,
            model=model,
            memory=server_memory or SHARED_MEMORY,
            forced_format=forced,
            retries=api_retries,
            retry_wait=retry_wait,
            temperature=temperature,
            max_tokens=max_tokens,
            first_token_timeout=first_token_timeout,
            idle_timeout=idle_timeout,
            max_parallel_calls=max_parallel_calls,
        )
        self._sessions: dict[str, AskSession] = {}
        self._recovery = Recovery(self._caller, self.settings)

    def __repr__(self) -> str:
        return f"LLMPlanner(model={self.model!r}, server={self.server!r})"

    @property
    def model(self) -> str:
        return self._caller.model

    @property
    def server(self) -> str:
        """The server's base URL: the key under which its format support is remembered."""
        return self._caller.server

    @property
    def usage(self) -> Usage:
        """Every model call this planner made, over all asks."""
        return Usage.of(self._caller.calls, self.settings.pricing)

    # -- lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP client if this planner created it."""
        if self._owns_client:
            await self._caller.client.close()

    async def __aenter__(self) -> LLMPlanner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- planning only --------------------------------------------------------------------

    async def plan_stream(
        self,
        request: str,
        tools: ToolsLike,
        *,
        emit: Callable[[Event], None] | None = None,
        run_id: str = "",
    ) -> AsyncIterator[Task]:
        """The plan's tasks, each as soon as it is valid: ``orchestrator.run(planner.plan_stream(...))``.

        ``tools``: a ``ToolRegistry`` or the tools themselves, as ``Orchestrator`` takes them.
        No joiner and no replanning; raises ``PlannerError`` when the plan stays invalid.
        """
        tools = ToolRegistry.coerce(tools)
        call = PlanCall(
            self._caller,
            JsonRequest("plan", self._plan_messages(tools, request), "plan", plan_schema(tools)),
            PlanAssembler(
                tools,
                target=self.settings.target,
                gate=self.settings.require_approval,
                placement=self.settings.placement,
            ),
            run_id=run_id,
            emit=emit or _ignore,
            max_repairs=self.settings.max_repairs,
            max_bytes=self.settings.max_plan_bytes,
            max_tasks=self.settings.max_plan_tasks,
            stream=self.settings.stream,
        )
        async for task in call.tasks():
            yield task

    def _plan_messages(self, tools: ToolRegistry, request: str) -> list[dict[str, str]]:
        return plan_messages(
            tools, request, instructions=self.settings.instructions, placement=self.settings.placement
        )

    async def plan(self, request: str, tools: ToolsLike) -> TaskGraph:
        """The whole plan as a graph, without running it (``stepweave ask --plan-only``)."""
        return TaskGraph([task async for task in self.plan_stream(request, tools)], name=request[:80])

    # -- plan, run, join --------------------------------------------------------------------

    async def ask(
        self,
        request: str,
        orchestrator: Orchestrator,
        *,
        inputs: dict[str, object] | None = None,
        on_event: EventHandler | None = None,
        time_limit: float | None = None,
    ) -> AskResult:
        """Plan ``request``, run it with ``orchestrator``, join; return the answer and its account.

        ``on_event`` sees every engine and planner event as it happens (the DAG forming,
        tasks ending, model calls). ``time_limit`` is a deadline in seconds for the whole
        ask (planning, every task, joining): past it the run is cancelled. Raises
        ``PlannerError`` if the model cannot produce a valid plan or decision, the API
        fails beyond its retries, or the deadline passes (the message says so).
        """
        if time_limit is not None and time_limit <= 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}")
        deadline = asyncio.timeout(time_limit)
        try:
            async with deadline:
                return await self._ask(request, orchestrator, inputs, on_event)
        except TimeoutError:
            if not deadline.expired():
                raise  # a timeout of something inside, not our deadline
            raise PlannerError(
                f"the ask did not finish within its time limit of {time_limit:g}s; the run was cancelled"
            ) from None

    async def _ask(
        self,
        request: str,
        orchestrator: Orchestrator,
        inputs: dict[str, object] | None,
        on_event: EventHandler | None,
    ) -> AskResult:
        # aclosing: a handler that raises (or the deadline) must end the run now, not at
        # garbage collection.
        async with contextlib.aclosing(self.ask_events(request, orchestrator, inputs=inputs)) as events:
            async for event in events:
                if on_event is not None:
                    outcome = on_event(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                if isinstance(event, AskEnded):
                    return event.result
        raise AssertionError("unreachable: ask_events always ends with AskEnded")

    async def ask_events(
        self,
        request: str,
        orchestrator: Orchestrator,
        *,
        inputs: dict[str, object] | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Every event of an ``ask`` in order; the last is ``AskEnded`` carrying the ``AskResult``."""
        started = time.time()
        run_id = uuid.uuid4().hex[:12]
        loop = asyncio.get_running_loop()
        # Engine events reach the queue through the forwarder task, one loop step late;
        # planner events take the same one step (call_soon), so the merged order is true.
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        def emit(event: Event | None) -> None:
            loop.call_soon(queue.put_nowait, event)

        session = AskSession(
            self._caller,
            self.settings,
            request=request,
            tools=orchestrator.tools,
            run_id=run_id,
            emit=emit,
        )
        self._sessions[run_id] = session
        try:
            async with orchestrator.start(session.tasks(), inputs=inputs, run_id=run_id) as run:
                session.run = run
                forwarder = asyncio.create_task(_forward(run.events(), queue), name=f"stepweave-ask-{run_id}")
                try:
                    while True:
                        event = await queue.get()
                        if event is None:
                            continue
                        yield event
                        if isinstance(event, RunEnded):
                            break
                finally:
                    forwarder.cancel()
                    await asyncio.gather(forwarder, return_exceptions=True)
                run_result = await run.wait()
            if session.error is not None:
                raise session.error
            if session.answer is None:
                await session.final_join(run_result.tasks)
            emit(None)  # after every event emitted so far
            while (event := await queue.get()) is not None:
                yield event
            usage = Usage.of(session.calls, self.settings.pricing)
            # The engine's account of the run carries what planning it cost, too.
            run_result.usage = usage.to_dict()
            result = AskResult(
                request=request,
                answer=session.answer or "",
                run_result=run_result,
                plans=tuple(session.plans),
                decisions=tuple(session.decisions),
                usage=usage,
                started_at=started,
                ended_at=time.time(),
            )
            yield AskEnded(run_id=run_id, result=result)
        finally:
            self._sessions.pop(run_id, None)

    # -- the engine's replan hook ---------------------------------------------------------

    async def replanner(self, request: ReplanRequest) -> GraphEdit | None:
        """The engine's ``replan`` failure hook, for runs started by ``ask``.

        ``Orchestrator(tools, failure_policy="replan", replanner=planner.replanner)``: when a
        task fails beyond its retries, the tasks still waiting on it are removed and the model
        plans replacements, which may use finished tasks' outputs by id. Returns ``None`` (give
        up) once ``max_replans`` is spent, when the model finds no way around, or for a run
        that ``ask`` did not start (use ``replanner_for(tools)`` there).
        """
        session = self._sessions.get(request.run_id)
        if session is None:
            return None
        return await self._recovery.recover(request, session.tools, session.request, session)

    def replanner_for(self, tools: ToolsLike, goal: str = "") -> Replanner:
        """A ``replan`` failure hook for any run over ``tools`` (a YAML workflow, a fixed graph).

        ``goal`` tells the model what the run is for; default: the graph's name.
        """
        tools = ToolRegistry.coerce(tools)

        async def hook(request: ReplanRequest) -> GraphEdit | None:
            session = self._sessions.get(request.run_id)
            if session is not None:
                return await self._recovery.recover(request, session.tools, session.request, session)
            return await self._recovery.recover(request, tools, goal or request.graph.name or "", None)

        return hook


def _ignore(event: Event) -> None:
    return None


async def _forward(events: AsyncIterator[Event], queue: asyncio.Queue[Event | None]) -> None:
    async for event in events:
        queue.put_nowait(event)
