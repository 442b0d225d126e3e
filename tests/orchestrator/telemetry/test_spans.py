"""The spans and metrics of a run, from its events, checked with the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan

from orchestrator import Orchestrator, Task, TaskGraph
from tools import Tool, ToolError, tool

from .conftest import Otel


class Flaky:
    """Fails its first ``failures`` calls with a retryable error."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0


def tools_for(flaky: Flaky) -> list[Tool[..., Any]]:
    @tool(retries=2, backoff=0.001)
    async def fetch() -> int:
        """Fetch, unreliably."""
        flaky.calls += 1
        if flaky.calls <= flaky.failures:
            raise ConnectionError(f"refused ({flaky.calls})")
        return flaky.calls

    @tool
    async def merge(value: int) -> int:
        """Merge."""
        return value + 1

    @tool
    async def broken() -> None:
        """Always fails, not retryably."""
        raise ToolError("disk full")

    return [fetch, merge, broken]


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_run_and_attempt_spans_with_retries(otel: Otel) -> None:
    graph = TaskGraph(
        [
            Task(id="get", tool="fetch"),
            Task(id="add", tool="merge", args={"value": "${{ steps.get.output }}"}),
        ],
        name="pipeline",
    )
    result = await Orchestrator(tools=tools_for(Flaky(failures=1))).run(graph, run_id="run-otel-1")
    assert result.ok, result.error

    (run,) = otel.named("run")
    assert run.name == "run pipeline"
    assert attrs(run) == {
        "stepweave.run.id": "run-otel-1",
        "stepweave.workflow.name": "pipeline",
        "stepweave.run.status": "succeeded",
        "stepweave.run.tasks": 2,
    }
    assert run.status.is_ok and run.parent is None

    fetches = sorted(otel.named("task fetch"), key=lambda s: attrs(s)["stepweave.task.attempt"])  # type: ignore[arg-type, return-value]
    assert [attrs(s)["stepweave.task.attempt"] for s in fetches] == [1, 2]
    first, second = fetches
    assert attrs(first)["stepweave.task.status"] == "retrying"
    assert attrs(first)["error.type"] == "ConnectionError"
    assert attrs(first)["stepweave.task.error"] == "refused (1)"
    assert not first.status.is_ok
    assert attrs(second)["stepweave.task.status"] == "succeeded" and second.status.is_ok
    (add,) = otel.named("task merge")
    assert attrs(add)["stepweave.task.id"] == "add"
    for span in (first, second, add):
        assert span.parent is not None and span.parent.span_id == run.context.span_id
        assert span.context.trace_id == run.context.trace_id
        assert attrs(span)["stepweave.run.id"] == "run-otel-1"
    assert first.end_time is not None and second.start_time is not None
    assert first.end_time <= second.start_time
    assert run.start_time is not None and run.end_time is not None
    assert run.start_time <= min(s.start_time or 0 for s in fetches)
    assert run.end_time >= (add.end_time or 0)

    retries = otel.points("stepweave.task.retries")
    assert sum(getattr(p, "value", 0) for p in retries) == 1
    durations = {
        dict(getattr(p, "attributes", {}))["stepweave.task.tool"]: p
        for p in otel.points("stepweave.task.duration")
    }
    assert set(durations) == {"fetch", "merge"} and getattr(durations["fetch"], "count", 0) == 1
    waits = otel.points("stepweave.task.queue_wait")
    assert sum(getattr(p, "count", 0) for p in waits) == 2


async def test_a_failed_task_and_what_it_cancels(otel: Otel) -> None:
    flaky = Flaky(failures=0)
    graph = [Task(id="bad", tool="broken"), Task(id="after", tool="merge", args={"value": 1}, deps=("bad",))]
    result = await Orchestrator(tools=tools_for(flaky)).run(graph)
    assert not result.ok

    (run,) = otel.named("run")
    assert attrs(run)["stepweave.run.status"] == "failed"
    assert not run.status.is_ok and "disk full" in (run.status.description or "")
    (bad,) = otel.named("task broken")
    assert attrs(bad)["stepweave.task.status"] == "failed"
    assert attrs(bad)["error.type"] == "ToolError" and attrs(bad)["stepweave.task.error"] == "disk full"
    assert bad.status.description == "ToolError: disk full"
    assert otel.named("task merge") == []  # never started: no attempt, no span
    ran = [dict(getattr(p, "attributes", {})) for p in otel.points("stepweave.task.duration")]
    assert ran == [{"stepweave.task.tool": "broken", "stepweave.task.status": "failed"}]


async def test_a_run_inside_the_callers_span_is_its_child(otel: Otel) -> None:
    tracer = trace.get_tracer("the-application")
    with tracer.start_as_current_span("handle request") as outer:
        result = await Orchestrator(tools=tools_for(Flaky(0))).run(
            [Task(id="one", tool="merge", args={"value": 1})]
        )
        # and the run's span does not leak into the caller's context afterwards
        assert trace.get_current_span() is outer
    assert result.ok
    (run,) = otel.named("run")
    assert run.parent is not None and run.parent.span_id == outer.get_span_context().span_id
    (task,) = otel.named("task merge")
    assert task.context.trace_id == outer.get_span_context().trace_id


async def test_a_for_each_fan_out_has_one_span_per_item(otel: Otel) -> None:
    graph = [Task(id="each", tool="merge", for_each="${{ [1, 2, 3] }}", args={"value": "${{ item }}"})]
    result = await Orchestrator(tools=tools_for(Flaky(0))).run(graph)
    assert result.ok, result.error
    ids = sorted(str(attrs(s)["stepweave.task.id"]) for s in otel.named("task merge"))
    assert ids == ["each", "each[0]", "each[1]", "each[2]"]
