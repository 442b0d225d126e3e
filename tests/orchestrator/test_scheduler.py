"""The scheduler's behaviour, each test with real tools on a real event loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from orchestrator import (
    GraphEdit,
    GraphEditError,
    GraphValidationError,
    Orchestrator,
    ReplanRequest,
    RunCancelled,
    RunEnded,
    RunStatus,
    Task,
    TaskEnded,
    TaskFailed,
    TaskGraph,
    TaskProgress,
    TaskReady,
    TaskRetrying,
    TaskStarted,
    TaskStatus,
)
from tools import ToolContext, ToolError, tool

S = TaskStatus


class Log:
    """Records what tools did, in order, with the event loop's clock."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, what: str, task: str) -> None:
        self.entries.append((what, task))
        self._changed.set()

    async def wait_until(self, predicate: Callable[[list[tuple[str, str]]], bool]) -> None:
        """Wait (event-driven, bounded) until ``predicate(entries)`` holds."""

        async def watch() -> None:
            while not predicate(self.entries):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(watch(), 5)

    def index(self, what: str, task: str) -> int:
        return self.entries.index((what, task))


@pytest.fixture
def log() -> Log:
    return Log()


def make_tools(log: Log) -> list[Any]:
    @tool
    async def step(ctx: ToolContext, delay: float = 0.0, value: Any = None) -> Any:
        log("start", ctx.task_id)
        if delay:
            await asyncio.sleep(delay)
        log("end", ctx.task_id)
        return value if value is not None else ctx.task_id

    @tool
    async def add(a: int, b: int) -> int:
        return a + b

    @tool
    async def boom(message: str = "kaboom") -> None:
        raise RuntimeError(message)

    @tool
    async def hang(ctx: ToolContext) -> None:
        log("start", ctx.task_id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            log("cancelled", ctx.task_id)
            raise

    return [step, add, boom, hang]


async def test_results_flow_typed_between_dependent_tasks(log: Log) -> None:
    graph = TaskGraph(
        tasks=[
            Task(id="a", tool="step", args={"value": {"n": 2, "names": ["x", "y"]}}),
            Task(id="b", tool="step", args={"value": 40}),
            Task(id="c", tool="add", args={"a": "${{ steps.a.output.n }}", "b": "${{ steps.b.output }}"}),
            Task(id="d", tool="step", args={"value": "${{ steps.a.output.names }}"}),
            Task(id="e", tool="step", args={"value": "${{ inputs.who }}-${{ steps.c.output }}"}),
        ]
    )
    result = await Orchestrator(tools=make_tools(log)).run(graph, inputs={"who": "me"})
    assert result.ok, result.error
    assert result.tasks["c"].output == 42 and isinstance(result.tasks["c"].output, int)
    assert result.tasks["d"].output == ["x", "y"]
    assert result.tasks["e"].output == "me-42"
    assert all(t.status is S.SUCCEEDED and t.attempts == 1 for t in result.tasks.values())
    assert result.outputs["c"] == 42 and result.raise_for_status() is result


async def test_slow_branch_does_not_delay_unrelated_fast_chain(log: Log) -> None:
    # Branch A: one 500 ms step. Branch B: five chained quick steps. Without a superstep
    # barrier, B's whole chain ends before A's single step does.
    tasks = [Task(id="slow", tool="step", args={"delay": 0.5})]
    prev = None
    for i in range(5):
        tasks.append(Task(id=f"fast{i}", tool="step", args={"delay": 0.01}, deps=[prev] if prev else []))
        prev = f"fast{i}"
    tasks.append(Task(id="join", tool="step", deps=["slow", "fast4"]))
    result = await Orchestrator(tools=make_tools(log)).run(TaskGraph(tasks))
    assert result.ok
    assert log.index("end", "fast4") < log.index("end", "slow")
    assert log.index("start", "fast1") < log.index("end", "slow")
    assert log.index("start", "join") > log.index("end", "slow")


async def test_raising_tool_fails_its_task_and_fail_fast_cancels_the_rest(log: Log) -> None:
    graph = TaskGraph(
        [
            Task(id="warm", tool="step", args={"delay": 0.01}),  # so the sibling is running first
            Task(id="bad", tool="boom", args={"message": "disk on fire"}, deps=["warm"]),
            Task(id="sibling", tool="hang"),
            Task(id="after", tool="step", deps=["bad"]),
        ]
    )
    result = await Orchestrator(tools=make_tools(log)).run(graph)
    assert result.status is RunStatus.FAILED
    bad = result.tasks["bad"]
    assert bad.status is S.FAILED and bad.error is not None
    assert bad.error.type == "RuntimeError" and bad.error.message == "disk on fire"
    assert result.tasks["sibling"].status is S.CANCELLED
    assert ("cancelled", "sibling") in log.entries
    assert result.tasks["after"].status is S.CANCELLED and ("start", "after") not in log.entries
    assert "task 'bad' failed" in (result.error or "")
    with pytest.raises(TaskFailed, match="disk on fire") as info:
        result.raise_for_status()
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_continue_policy_lets_independent_branches_finish(log: Log) -> None:
    graph = TaskGraph(
        [
            Task(id="bad", tool="boom"),
            Task(id="after_bad", tool="step", deps=["bad"]),
            Task(id="ok1", tool="step", args={"delay": 0.05}),
            Task(id="ok2", tool="step", deps=["ok1"]),
        ]
    )
    result = await Orchestrator(tools=make_tools(log), failure_policy="continue").run(graph)
    assert result.status is RunStatus.FAILED
    assert result.tasks["ok2"].status is S.SUCCEEDED
    after = result.tasks["after_bad"]
    assert after.status is S.CANCELLED and after.error is not None
    assert after.error.type == "UpstreamFailed" and "'bad'" in after.error.message


async def test_hanging_tool_times_out_without_hanging_the_run(log: Log) -> None:
    graph = TaskGraph([Task(id="stuck", tool="hang", timeout=0.2), Task(id="other", tool="step")])
    started = time.perf_counter()
    result = await Orchestrator(tools=make_tools(log), failure_policy="continue").run(graph)
    assert time.perf_counter() - started < 5
    stuck = result.tasks["stuck"]
    assert stuck.status is S.FAILED and stuck.error is not None
    assert stuck.error.type == "TaskTimeout" and "0.2s" in stuck.error.message
    assert ("cancelled", "stuck") in log.entries  # the coroutine really was cancelled
    assert result.tasks["other"].ok


async def test_blocking_sync_tool_timeout_is_reported_honestly() -> None:
    release = __import__("threading").Event()

    @tool(timeout=0.1)
    def blocking() -> str:
        release.wait(5)
        return "late"

    try:
        result = await Orchestrator(tools=[blocking]).run([Task(id="b", tool="blocking")])
    finally:
        release.set()
    error = result.tasks["b"].error
    assert error is not None and error.type == "TaskTimeout"
    assert "thread cannot be stopped" in error.message


async def test_flaky_tool_succeeds_on_third_attempt_with_backoff_events() -> None:
    calls: list[float] = []

    @tool(retries=3)
    async def flaky() -> str:
        calls.append(time.perf_counter())
        if len(calls) < 3:
            raise ConnectionError(f"attempt {len(calls)} refused")
        return "finally"

    orch = Orchestrator(tools=[flaky])
    events = [e async for e in orch.run_stream([Task(id="f", tool="flaky", backoff=0.02)])]
    result = events[-1].result if isinstance(events[-1], RunEnded) else None
    assert result is not None and result.ok
    assert result.tasks["f"].output == "finally" and result.tasks["f"].attempts == 3
    retrying = [e for e in events if isinstance(e, TaskRetrying)]
    assert [e.attempt for e in retrying] == [1, 2]
    assert retrying[0].error.type == "ConnectionError" and retrying[0].delay >= 0.02
    assert [e.attempt for e in events if isinstance(e, TaskStarted)] == [1, 2, 3]
    assert calls[1] - calls[0] >= 0.02  # backoff really waited


async def test_task_retries_override_tool_default() -> None:
    calls = 0

    @tool(retries=5)
    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("nope")

    result = await Orchestrator(tools=[always_fails]).run(
        [Task(id="x", tool="always_fails", retries=1, backoff=0.001)]
    )
    assert calls == 2 and result.tasks["x"].attempts == 2


async def test_non_retryable_errors_are_not_retried(log: Log) -> None:
    calls = 0

    @tool(retries=3)
    async def permanent() -> None:
        nonlocal calls
        calls += 1
        raise ToolError("quota exhausted", retryable=False)

    @tool(retries=3)
    async def typed(n: int) -> int:
        nonlocal calls
        calls += 1
        return n

    graph = TaskGraph(
        [
            Task(id="p", tool="permanent", backoff=0.001),
            Task(id="src", tool="step", args={"value": "not-a-number"}),
            Task(id="v", tool="typed", args={"n": "${{ steps.src.output }}"}, backoff=0.001),
        ]
    )
    orch = Orchestrator(tools=[permanent, typed, *make_tools(log)], failure_policy="continue")
    result = await orch.run(graph)
    assert result.tasks["p"].attempts == 1 and result.tasks["p"].error is not None
    assert result.tasks["p"].error.retryable is False
    validation = result.tasks["v"]
    assert validation.status is S.FAILED and validation.attempts == 1
    assert validation.error is not None and validation.error.type == "ToolArgumentError"
    assert "n: Input should be a valid integer" in validation.error.message
    assert calls == 1  # `typed` never ran: arguments are validated before the call


async def test_cancelling_a_run_cancels_steps_and_leaves_no_stray_tasks(log: Log) -> None:
    graph = TaskGraph(
        [Task(id=f"h{i}", tool="hang") for i in range(3)] + [Task(id="next", tool="step", deps=["h0"])]
    )
    orch = Orchestrator(tools=make_tools(log))
    runner = asyncio.create_task(orch.run(graph))
    await log.wait_until(lambda entries: sum(what == "start" for what, _ in entries) == 3)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert sorted(t for what, t in log.entries if what == "cancelled") == ["h0", "h1", "h2"]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_run_cancel_returns_a_cancelled_result(log: Log) -> None:
    orch = Orchestrator(tools=make_tools(log))
    async with orch.start([Task(id="h", tool="hang"), Task(id="n", tool="step", deps=["h"])]) as run:
        async for event in run.events():
            if isinstance(event, TaskStarted):
                run.cancel("operator said stop")
        result = await run.wait()
    assert result.status is RunStatus.CANCELLED
    assert result.tasks["h"].status is S.CANCELLED and result.tasks["n"].status is S.CANCELLED
    assert "operator said stop" in (result.error or "")
    with pytest.raises(RunCancelled):
        result.raise_for_status()


async def test_conditions_skip_and_skipping_propagates(log: Log) -> None:
    graph = TaskGraph(
        [
            Task(id="probe", tool="step", args={"value": {"status": 503}}),
            Task(id="healthy", tool="step", when="${{ steps.probe.output.status < 500 }}"),
            Task(id="after_healthy", tool="step", deps=["healthy"]),
            Task(id="restart", tool="step", when="steps.probe.output.status >= 500"),
            # OR-join: runs after whichever branch ran.
            Task(id="report", tool="step", deps=["after_healthy", "restart"], join="any"),
            # AND-join over a skipped branch is skipped.
            Task(id="both", tool="step", deps=["after_healthy", "restart"]),
        ]
    )
    result = await Orchestrator(tools=make_tools(log)).run(graph)
    status = {tid: t.status for tid, t in result.tasks.items()}
    assert status == {
        "probe": S.SUCCEEDED,
        "healthy": S.SKIPPED,
        "after_healthy": S.SKIPPED,
        "restart": S.SUCCEEDED,
        "report": S.SUCCEEDED,
        "both": S.SKIPPED,
    }
    assert result.ok
    assert ("start", "healthy") not in log.entries


async def test_condition_error_fails_the_task_naming_the_expression(log: Log) -> None:
    graph = TaskGraph(
        [Task(id="a", tool="step", args={"value": 1}), Task(id="b", tool="step", when="steps.a.output.x > 1")]
    )
    result = await Orchestrator(tools=make_tools(log)).run(graph)
    error = result.tasks["b"].error
    assert result.tasks["b"].status is S.FAILED and error is not None
    assert "steps.a.output.x" in error.message


@pytest.mark.parametrize(
    ("max_concurrency", "tool_limit", "expected"), [(2, None, 2), (None, 3, 3), (4, 1, 1)]
)
async def test_concurrency_caps_are_enforced(
    max_concurrency: int | None, tool_limit: int | None, expected: int
) -> None:
    running = 0
    peak = 0

    @tool
    async def busy() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    orch = Orchestrator(
        tools=[busy],
        max_concurrency=max_concurrency,
        tool_limits={"busy": tool_limit} if tool_limit else None,
    )
    result = await orch.run([Task(id=f"t{i}", tool="busy") for i in range(10)])
    assert result.ok and peak == expected


async def test_tasks_streamed_in_start_before_the_stream_ends(log: Log) -> None:
    first_started = asyncio.Event()

    @tool
    async def signal(ctx: ToolContext) -> str:
        first_started.set()
        return "first"

    async def plan() -> AsyncIterator[Task]:
        yield Task(id="t1", tool="signal")
        # The next task is only produced once the first is running: a scheduler that
        # waited for the whole plan would deadlock here (and hit the timeout).
        await asyncio.wait_for(first_started.wait(), 5)
        yield Task(id="t2", tool="step", args={"value": "${{ steps.t1.output }}+second"})

    result = await Orchestrator(tools=[signal, *make_tools(log)]).run(plan())
    assert result.ok and result.tasks["t2"].output == "first+second"


async def test_invalid_streamed_task_fails_the_run_naming_it(log: Log) -> None:
    async def plan() -> AsyncIterator[Task]:
        yield Task(id="t1", tool="step")
        yield Task(id="t2", tool="step", deps=["t9"])

    result = await Orchestrator(tools=make_tools(log)).run(plan())
    assert result.status is RunStatus.FAILED
    assert "t2" in (result.error or "") and "unknown task 't9'" in (result.error or "")


async def test_edits_add_tasks_to_a_running_graph_and_bad_edits_change_nothing(log: Log) -> None:
    gate = asyncio.Event()

    @tool
    async def wait_gate() -> str:
        await asyncio.wait_for(gate.wait(), 5)
        return "opened"

    orch = Orchestrator(tools=[wait_gate, *make_tools(log)])
    graph = TaskGraph(
        [
            Task(id="done", tool="step"),
            Task(id="gate", tool="wait_gate"),
            Task(id="later", tool="step", deps=["gate"]),
        ]
    )
    async with orch.start(graph) as run:
        async for event in run.events():
            if isinstance(event, TaskEnded) and event.task_id == "done":
                break
        before = run.graph.to_dict()
        for bad, why in [
            (
                GraphEdit(
                    add_deps=[("later", "later2")], add=[Task(id="later2", tool="step", deps=["later"])]
                ),
                "cycle",
            ),
            (GraphEdit(update=[Task(id="gate", tool="step")]), "already started"),
            (GraphEdit(remove=["done"]), "already started"),
            (GraphEdit(add=[Task(id="x", tool="step", deps=["nowhere"])]), "unknown task 'nowhere'"),
        ]:
            with pytest.raises(GraphEditError, match=why):
                run.apply(bad)
            assert run.graph.to_dict() == before
        run.apply(
            GraphEdit(
                add=[
                    Task(id="uses_done", tool="step", args={"value": "${{ steps.done.output }}!"}),
                    Task(id="after_later", tool="step", deps=["later"]),
                ],
                update=[Task(id="later", tool="step", args={"value": "changed"}, deps=["gate"])],
            )
        )
        gate.set()
        result = await run.wait()
    assert result.ok
    assert result.tasks["uses_done"].output == "done!"
    assert result.tasks["later"].output == "changed"
    assert log.index("start", "after_later") > log.index("end", "later")


async def test_replan_hook_recovers_from_a_failure(log: Log) -> None:
    seen: list[ReplanRequest] = []

    async def replanner(request: ReplanRequest) -> GraphEdit:
        seen.append(request)
        return GraphEdit(
            add=[Task(id="fallback", tool="step", args={"value": "plan B"})],
            update=[Task(id="use", tool="step", args={"value": "${{ steps.fallback.output }}"})],
        )

    graph = TaskGraph([Task(id="primary", tool="boom"), Task(id="use", tool="step", deps=["primary"])])
    result = await Orchestrator(tools=make_tools(log), failure_policy="replan", replanner=replanner).run(
        graph
    )
    assert [r.failed_task for r in seen] == ["primary"] and seen[0].error.message == "kaboom"
    assert result.tasks["primary"].status is S.FAILED
    assert result.tasks["use"].output == "plan B"
    assert result.ok


async def test_approval_gate(log: Log) -> None:
    graph = [Task(id="rm", tool="step", needs_approval=True)]
    denied = await Orchestrator(tools=make_tools(log)).run(graph)
    error = denied.tasks["rm"].error
    assert error is not None and error.type == "ApprovalRequired" and ("start", "rm") not in log.entries

    asked: list[str] = []

    async def approve(task: Task, args: Any) -> bool:
        asked.append(task.id)
        return True

    approved = await Orchestrator(tools=make_tools(log), approver=approve).run(graph)
    assert approved.ok and asked == ["rm"]


async def test_event_stream_orders_state_changes_and_serialises(log: Log) -> None:
    @tool
    def progressing(ctx: ToolContext) -> int:
        ctx.progress(0.5, "half")  # from a worker thread
        return 1

    graph = TaskGraph([Task(id="p", tool="progressing"), Task(id="q", tool="step", deps=["p"])])
    events = [e async for e in Orchestrator(tools=[progressing, *make_tools(log)]).run_stream(graph)]
    kinds = [(type(e).__name__, getattr(e, "task_id", None)) for e in events]
    assert kinds[0][0] == "RunStarted" and kinds[-1][0] == "RunEnded"
    for tid in ("p", "q"):
        mine = [k for k, t in kinds if t == tid]
        assert mine[0] == "TaskReady" and mine[1] == "TaskStarted" and mine[-1] == "TaskEnded"
    assert kinds.index(("TaskEnded", "p")) < kinds.index(("TaskReady", "q"))
    progress = [e for e in events if isinstance(e, TaskProgress)]
    assert [(e.fraction, e.message) for e in progress] == [(0.5, "half")]
    lines = [json.dumps(e.to_dict()) for e in events]
    assert json.loads(lines[-1])["result"]["tasks"]["q"]["status"] == "succeeded"
    assert {json.loads(line)["event"] for line in lines} >= {"run_started", "task_ready", "task_ended"}
    assert all(isinstance(e, TaskReady | TaskStarted | TaskEnded | TaskProgress) for e in events[1:-1])


async def test_bad_graph_is_rejected_before_anything_runs(log: Log) -> None:
    orch = Orchestrator(tools=make_tools(log))
    with pytest.raises(GraphValidationError) as info:
        await orch.run(
            [
                Task(id="a", tool="stpe"),
                Task(id="b", tool="add", args={"a": "x", "b": 1}),
                Task(id="c", tool="step", target="any-device"),
            ]
        )
    message = str(info.value)
    assert "unknown tool 'stpe'" in message and "argument 'a'" in message and "no device executor" in message
    assert log.entries == []


async def test_callers_graph_is_not_mutated_by_edits(log: Log) -> None:
    graph = TaskGraph([Task(id="a", tool="step")])
    orch = Orchestrator(tools=make_tools(log))
    async with orch.start(graph) as run:
        run.add_task(Task(id="b", tool="step", deps=["a"]))
        result = await run.wait()
    assert set(result.tasks) == {"a", "b"} and set(graph.tasks) == {"a"}


def test_run_sync_works_from_plain_code(log: Log) -> None:
    result = Orchestrator(tools=make_tools(log)).run_sync([Task(id="a", tool="add", args={"a": 1, "b": 2})])
    assert result.tasks["a"].output == 3


async def test_for_each_fans_out_at_run_time_and_keeps_item_order(log: Log) -> None:
    @tool
    async def listing() -> list[float]:
        return [0.06, 0.0, 0.03]  # delays: items finish in the order 1, 2, 0

    @tool
    async def work(ctx: ToolContext, delay: float, label: str) -> str:
        await asyncio.sleep(delay)
        log("end", ctx.task_id)
        return f"{label}:{delay}"

    graph = TaskGraph(
        [
            Task(id="ls", tool="listing"),
            Task(
                id="each",
                tool="work",
                for_each="steps.ls.output",
                args={"delay": "${{ item }}", "label": "x"},
            ),
            Task(id="after", tool="step", args={"value": "${{ steps.each.output | length }}"}),
        ]
    )
    events = [e async for e in Orchestrator(tools=[listing, work, *make_tools(log)]).run_stream(graph)]
    result = events[-1].result  # type: ignore[attr-defined]
    assert result.ok
    assert result.tasks["each"].output == ["x:0.06", "x:0.0", "x:0.03"]
    assert [t for what, t in log.entries if what == "end" and t.startswith("each")] == [
        "each[1]",
        "each[2]",
        "each[0]",
    ]
    assert [result.tasks[f"each[{i}]"].status for i in range(3)] == [S.SUCCEEDED] * 3
    assert result.tasks["after"].output == 3
    added = [e.task.id for e in events if type(e).__name__ == "TaskAdded"]
    assert added == ["each[0]", "each[1]", "each[2]"]


async def test_for_each_failures_name_the_item_and_the_task(log: Log) -> None:
    @tool
    async def maybe(n: int) -> int:
        if n == 2:
            raise ValueError("two is bad")
        return n

    graph = TaskGraph(
        [
            Task(id="src", tool="step", args={"value": {"ns": [1, 2, 3], "scalar": 5}}),
            Task(id="each", tool="maybe", for_each="steps.src.output.ns", args={"n": "${{ item }}"}),
            Task(id="not_list", tool="maybe", for_each="steps.src.output.scalar", args={"n": "${{ item }}"}),
            Task(id="empty", tool="maybe", for_each="${{ [] }}", args={"n": "${{ item }}"}),
        ]
    )
    result = await Orchestrator(tools=[maybe, *make_tools(log)], failure_policy="continue").run(graph)
    each = result.tasks["each"]
    assert each.status is S.FAILED and each.error is not None
    assert "1 of 3 items failed" in each.error.message and "each[1]" in each.error.message
    assert "two is bad" in each.error.message
    not_list = result.tasks["not_list"].error
    assert not_list is not None and "must evaluate to a list, got int" in not_list.message
    assert "'not_list'" in not_list.message
    assert result.tasks["empty"].status is S.SUCCEEDED and result.tasks["empty"].output == []


def test_item_outside_for_each_is_a_definition_error(log: Log) -> None:
    with pytest.raises(GraphValidationError, match="args use 'item' but the task has no for_each"):
        Orchestrator(tools=make_tools(log)).start([Task(id="a", tool="step", args={"value": "${{ item }}"})])
