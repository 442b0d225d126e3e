"""One ``ask``: the task stream a run consumes, from the first plan to the joiner's answer.

The run stays open while its task stream is, so the whole LLMCompiler loop is one async
generator: yield the plan's tasks as they stream in; wait (on the run's events, not by
polling) until every task so far has ended; ask the joiner; then either end the stream
(finish) or yield a replan's tasks, which may use finished tasks' outputs by id. Finished
tasks stay in the run and are never re-run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Literal

from orchestrator import (
    Event,
    PlannerError,
    Run,
    RunEnded,
    Task,
    TaskEnded,
    TaskStatus,
)
from tools import ToolRegistry

from .assemble import PlanAssembler, next_task_number
from .chat import ChatCaller, JsonRequest
from .context import Outcome
from .joiner import decide
from .messages import plan_messages, replan_messages
from .plan_call import PlanCall
from .result import PlanRecord
from .schema import JoinDecision, plan_schema
from .settings import PlannerSettings
from .usage import CallUsage

__all__ = ["AskSession", "unusable_outcomes"]


def unusable_outcomes(outcomes: Mapping[str, Outcome]) -> dict[str, str]:
    """Tasks that ended without an output, and how they ended."""
    return {
        tid: f"it {o.status.value}" + (f": {o.error}" if o.error else "")
        for tid, o in outcomes.items()
        if o.status.is_terminal and o.status is not TaskStatus.SUCCEEDED
    }


class AskSession:
    """State of one ``ask``: the run, what ended, the plans, the decisions, the calls."""

    def __init__(
        self,
        caller: ChatCaller,
        settings: PlannerSettings,
        *,
        request: str,
        tools: ToolRegistry,
        run_id: str,
        emit: Callable[[Event], None],
    ) -> None:
        self.caller = caller
        self.settings = settings
        self.request = request
        self.tools = tools
        self.run_id = run_id
        self.emit = emit
        self.run: Run | None = None
        self.outcomes: dict[str, TaskEnded] = {}
        self.plans: list[PlanRecord] = []
        self.decisions: list[JoinDecision] = []
        self.calls: list[CallUsage] = []
        self.replans = 0
        #: Every task id dispatched in this run, by any plan, repair or replan (ids stay unique).
        self.ids: set[str] = set()
        self.answer: str | None = None
        self.error: PlannerError | None = None
        self._schema = plan_schema(tools)
        self._events: AsyncIterator[Event] | None = None

    # -- the task stream ----------------------------------------------------------------

    async def tasks(self) -> AsyncIterator[Task]:
        """The run's task source. Planner failures end it and are kept in ``error``."""
        try:
            messages = plan_messages(
                self.tools,
                self.request,
                instructions=self.settings.instructions,
                placement=self.settings.placement,
            )
            async for task in self._plan(
                "plan",
                messages,
                PlanAssembler(
                    self.tools,
                    target=self.settings.target,
                    gate=self.settings.require_approval,
                    placement=self.settings.placement,
                    taken=self.ids,
                ),
            ):
                yield task
            while True:
                await self._settle()
                decision = await self._join(replans_left=self.settings.max_replans - self.replans)
                if decision.action == "finish":
                    self.answer = decision.answer
                    return
                self.replans += 1
                async for task in self._replan(decision.reason):
                    yield task
        except PlannerError as exc:
            self.error = exc
            if self.run is not None:
                self.run.cancel(f"planner failed: {exc}")
        finally:
            close = getattr(self._events, "aclose", None)
            if close is not None:
                await close()

    async def _plan(
        self,
        kind: Literal["plan", "replan"],
        messages: list[dict[str, str]],
        assembler: PlanAssembler,
        *,
        reason: str = "",
        allow_empty: bool = False,
    ) -> AsyncIterator[Task]:
        call = PlanCall(
            self.caller,
            JsonRequest(kind, messages, "plan", self._schema),
            assembler,
            run_id=self.run_id,
            emit=self.emit,
            max_repairs=self.settings.max_repairs,
            max_bytes=self.settings.max_plan_bytes,
            max_tasks=self.settings.max_plan_tasks,
            stream=self.settings.stream,
            allow_empty=allow_empty,
        )
        try:
            async for task in call.tasks():
                yield task
        finally:
            self.calls += call.calls
            self.plans.append(PlanRecord(kind, tuple(call.started), call.repairs, reason))

    async def _replan(self, reason: str) -> AsyncIterator[Task]:
        run = self._run()
        existing = dict(run.graph.tasks)
        messages = replan_messages(
            self.tools,
            self.request,
            tasks=existing.values(),
            outcomes=self.outcomes,
            next_number=next_task_number(existing.keys() | self.ids),
            result_limit=self.settings.result_limit,
            instructions=self.settings.instructions,
            reason=reason,
            placement=self.settings.placement,
        )
        assembler = PlanAssembler(
            self.tools,
            existing=existing,
            unusable=unusable_outcomes(self.outcomes),
            target=self.settings.target,
            gate=self.settings.require_approval,
            placement=self.settings.placement,
            taken=self.ids,
        )
        async for task in self._plan("replan", messages, assembler, reason=reason):
            yield task

    # -- waiting and joining ------------------------------------------------------------

    def _run(self) -> Run:
        if self.run is None:
            raise RuntimeError("the session's run is not set: start the run before iterating tasks()")
        return self.run

    async def _settle(self) -> None:
        """Return once every task in the graph has ended (fed by the run's events)."""
        run = self._run()
        if self._events is None:
            self._events = run.events()
        while not all(tid in self.outcomes for tid in run.graph.tasks):
            try:
                event = await anext(self._events)
            except StopAsyncIteration:
                return
            self.observe(event)
            if isinstance(event, RunEnded):
                return

    def observe(self, event: Event) -> None:
        if isinstance(event, TaskEnded):
            self.outcomes[event.task_id] = event

    async def _join(
        self, *, replans_left: int, outcomes: Mapping[str, Outcome] | None = None
    ) -> JoinDecision:
        decision = await decide(
            self.caller,
            request=self.request,
            tasks=list(self._run().graph),
            outcomes=self.outcomes if outcomes is None else outcomes,
            replans_left=replans_left,
            max_repairs=self.settings.max_repairs,
            result_limit=self.settings.result_limit,
            run_id=self.run_id,
            emit=self.emit,
            calls=self.calls,
            stream=self.settings.stream,
        )
        self.decisions.append(decision)
        return decision

    async def final_join(self, outcomes: Mapping[str, Outcome]) -> str:
        """After a run that ended before the joiner spoke (a fail-fast abort): answer from what there is."""
        decision = await self._join(replans_left=0, outcomes=outcomes)
        self.answer = decision.answer
        return decision.answer
