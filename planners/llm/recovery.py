"""Recovery from a failed task under the engine's ``replan`` failure policy.

When a task fails beyond its retries the scheduler awaits its replanner before ending the
task. Here that means: remove the pending tasks that wait on it (directly or not), ask
the model for replacements (which may use finished tasks' outputs by id) and hand back
one ``GraphEdit``, applied atomically. ``max_replans`` bounds it per run, shared with the
joiner's replans when the run belongs to an ``ask``.
"""

from __future__ import annotations

from collections import OrderedDict

from orchestrator import GraphEdit, ReplanRequest, TaskStatus
from tools import ToolRegistry

from .assemble import PlanAssembler, next_task_number
from .chat import ChatCaller, JsonRequest
from .messages import replan_messages
from .plan_call import PlanCall
from .result import PlanRecord
from .schema import plan_schema
from .session import AskSession, unusable_outcomes
from .settings import PlannerSettings

__all__ = ["Recovery", "waiting_on"]

#: Runs outside an ``ask`` whose replan counts are kept (oldest forgotten first).
_MAX_HOOK_RUNS = 1024


def waiting_on(request: ReplanRequest) -> set[str]:
    """Pending tasks that depend, directly or not, on the failed task."""
    dependents = request.graph.dependents()
    found: set[str] = set()
    stack = [request.failed_task]
    while stack:
        for child in dependents.get(stack.pop(), ()):
            result = request.results.get(child)
            if child not in found and (result is None or result.status is TaskStatus.PENDING):
                found.add(child)
                stack.append(child)
    return found


class Recovery:
    """Plans replacements for failed tasks; counts replans of runs that no ``ask`` owns."""

    def __init__(self, caller: ChatCaller, settings: PlannerSettings) -> None:
        self._caller = caller
        self.settings = settings
        self._hook_replans: OrderedDict[str, int] = OrderedDict()

    async def recover(
        self, request: ReplanRequest, tools: ToolRegistry, goal: str, session: AskSession | None
    ) -> GraphEdit | None:
        """The edit that routes around ``request.failed_task``, or ``None`` to give up."""
        used = session.replans if session is not None else self._hook_replans.get(request.run_id, 0)
        if used >= self.settings.max_replans:
            return None
        removed = waiting_on(request)
        existing = {t.id: t for t in request.graph if t.id not in removed}
        unusable = unusable_outcomes(request.results)
        unusable[request.failed_task] = f"it failed: {request.error}"
        messages = replan_messages(
            tools,
            goal or "finish the remaining work of this run",
            tasks=existing.values(),
            outcomes=request.results,
            next_number=next_task_number(request.graph.tasks.keys() | (session.ids if session else set())),
            result_limit=self.settings.result_limit,
            instructions=self.settings.instructions,
            failed=request.failed_task,
            error=str(request.error),
            removed=sorted(removed),
            allow_empty=True,
            placement=self.settings.placement,
        )
        call = PlanCall(
            self._caller,
            JsonRequest("replan", messages, "plan", plan_schema(tools, allow_empty=True)),
            PlanAssembler(
                tools,
                existing=existing,
                unusable=unusable,
                target=self.settings.target,
                gate=self.settings.require_approval,
                placement=self.settings.placement,
                taken=session.ids if session is not None else None,
            ),
            run_id=request.run_id,
            emit=session.emit if session is not None else _ignore,
            max_repairs=self.settings.max_repairs,
            max_bytes=self.settings.max_plan_bytes,
            max_tasks=self.settings.max_plan_tasks,
            # The edit is applied whole, so nothing starts early; streaming is for the
            # first-token and idle timeouts, which only a stream can have.
            stream=self.settings.stream,
            allow_empty=True,
        )
        try:
            tasks = [task async for task in call.tasks()]
        finally:
            if session is not None and not call.calls:
                pass  # ended (the run was cancelled) before its call went out: no replan was made
            elif session is not None:
                session.replans += 1
                session.calls += call.calls
                reason = f"task {request.failed_task!r} failed: {request.error}"
                session.plans.append(PlanRecord("replan", tuple(call.started), call.repairs, reason))
            else:
                self._count(request.run_id)
        if not tasks:
            return None
        return GraphEdit(
            add=tasks, remove=sorted(removed), reason=f"replan after {request.failed_task!r} failed"
        )

    def _count(self, run_id: str) -> None:
        self._hook_replans[run_id] = self._hook_replans.get(run_id, 0) + 1
        self._hook_replans.move_to_end(run_id)
        while len(self._hook_replans) > _MAX_HOOK_RUNS:
            self._hook_replans.popitem(last=False)


def _ignore(event: object) -> None:
    return None
