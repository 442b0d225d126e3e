"""Spans and metrics of one run, built from its typed events.

The scheduler knows nothing of tracing: every span here is made from an event, with the
event's own timestamp, so a span's times are the engine's times. One span per run (the
parent of everything the run does), one per task attempt (a retried task has one per
try), metrics for task durations, queue wait (ready to first start) and retries.

The run span is made current inside the run's own asyncio task, so whatever the run
starts (a planner's model calls, a tool's HTTP client spans) nests under it; a task
attempt's span is looked up by the device executor (``attempt_context``) and travels to
the device in the call message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode

from ..events import Event, RunEnded, RunStarted, TaskAdded, TaskEnded, TaskReady, TaskRetrying, TaskStarted
from ..graph import TaskGraph, TaskStatus
from ..result import RunStatus, TaskError
from .names import (
    ERROR_TYPE,
    RUN_ID,
    RUN_STATUS,
    RUN_TASKS,
    SCOPE,
    TASK_ATTEMPT,
    TASK_DURATION,
    TASK_ERROR,
    TASK_ID,
    TASK_QUEUE_WAIT,
    TASK_RETRIES,
    TASK_RETRY_DELAY,
    TASK_STATUS,
    TASK_TOOL,
    WORKFLOW_NAME,
)

__all__ = ["RunTelemetry"]

_NS = 1_000_000_000


@functools.cache
def _version() -> str:
    try:
        return version("stepweave")
    except PackageNotFoundError:
        return ""


class _Instruments:
    """The run metrics, created once per meter provider (instruments are not free)."""

    def __init__(self, provider: Any) -> None:
        meter = metrics.get_meter(SCOPE, _version())
        self.provider = provider
        self.duration = meter.create_histogram(*TASK_DURATION)
        self.queue_wait = meter.create_histogram(*TASK_QUEUE_WAIT)
        self.retries = meter.create_counter(*TASK_RETRIES)
        self.run_duration = meter.create_histogram(
            "stepweave.run.duration", unit="s", description="Time from a run's start to its end"
        )


_instruments: _Instruments | None = None


def _current_instruments() -> _Instruments:
    global _instruments
    provider = metrics.get_meter_provider()
    if _instruments is None or _instruments.provider is not provider:
        _instruments = _Instruments(provider)
    return _instruments


_STATUS = {
    TaskStatus.SUCCEEDED: StatusCode.OK,
    TaskStatus.FAILED: StatusCode.ERROR,
    TaskStatus.CANCELLED: StatusCode.ERROR,
}


def _fail(span: Span, error: TaskError) -> None:
    span.set_attribute(ERROR_TYPE, error.type)
    span.set_attribute(TASK_ERROR, error.message)
    span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))


class RunTelemetry:
    """Turns one run's events into spans and metric points (a listener on its event sink)."""

    def __init__(self, run_id: str, registry: dict[str, RunTelemetry]) -> None:
        self.run_id = run_id
        self._registry = registry
        self._tracer = trace.get_tracer(SCOPE, _version())
        self._metrics = _current_instruments()
        self._graph: TaskGraph | None = None
        self._run_span: Span | None = None
        #: A context holding the run span: the parent of every attempt's span.
        self._run_context: Context | None = None
        self._token: object | None = None
        #: The open span of each task's current attempt.
        self._attempts: dict[str, Span] = {}
        #: When each task became ready, until its first start (queue wait).
        self._ready: dict[str, float] = {}
        #: When each task first started (its duration runs to its end, retries included).
        self._started: dict[str, float] = {}
        self._tools: dict[str, str] = {}
        #: What each kind of event does (``on_event``; the event sink looks here directly).
        self.handlers: dict[type[Event], Callable[[Any], None]] = {
            RunStarted: self._run_started,
            TaskAdded: self._task_added,
            TaskReady: self._task_ready,
            TaskStarted: self._task_started,
            TaskRetrying: self._task_retrying,
            TaskEnded: self._task_ended,
            RunEnded: self._run_ended,
        }

    def on_event(self, event: Event) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(event)

    def attempt_context(self, task_id: str) -> Context | None:
        """A context whose current span is the task's running attempt (``None`` if none)."""
        span = self._attempts.get(task_id)
        return None if span is None else trace.set_span_in_context(span)

    # -- handlers ---------------------------------------------------------------------

    def _run_started(self, event: RunStarted) -> None:
        graph = self._graph = event.graph
        name = graph.name or ""
        attributes: dict[str, Any] = {RUN_ID: self.run_id}
        if name:
            attributes[WORKFLOW_NAME] = name
        span = self._run_span = self._tracer.start_span(
            f"run {name}".strip(), attributes=attributes, start_time=int(event.at * _NS)
        )
        self._registry[self.run_id] = self
        # Emitted inside the run's own task: making the span current here puts everything
        # the run starts under it, and touches no context but the run's.
        self._run_context = trace.set_span_in_context(span)
        self._token = otel_context.attach(self._run_context)

    def _tool(self, task_id: str) -> str:
        tool = self._tools.get(task_id)
        if tool is None and self._graph is not None:
            task = self._graph.tasks.get(task_id)
            tool = task.tool if task is not None else ""
            self._tools[task_id] = tool
        return tool or ""

    def _task_added(self, event: TaskAdded) -> None:
        self._tools[event.task.id] = event.task.tool

    def _task_ready(self, event: TaskReady) -> None:
        self._ready[event.task_id] = event.at

    def _task_started(self, event: TaskStarted) -> None:
        task_id = event.task_id
        tool = self._tool(task_id)
        if task_id not in self._started:
            self._started[task_id] = event.at
            ready = self._ready.pop(task_id, None)
            if ready is not None:
                self._metrics.queue_wait.record(max(0.0, event.at - ready), {TASK_TOOL: tool})
        self._attempts[task_id] = self._tracer.start_span(
            f"task {tool}".strip(),
            context=self._run_context,
            attributes={RUN_ID: self.run_id, TASK_ID: task_id, TASK_TOOL: tool, TASK_ATTEMPT: event.attempt},
            start_time=int(event.at * _NS),
        )

    def _task_retrying(self, event: TaskRetrying) -> None:
        span = self._attempts.pop(event.task_id, None)
        self._metrics.retries.add(1, {TASK_TOOL: self._tool(event.task_id)})
        if span is None:
            return
        span.set_attribute(TASK_STATUS, "retrying")
        span.set_attribute(TASK_RETRY_DELAY, event.delay)
        _fail(span, event.error)
        span.end(int(event.at * _NS))

    def _task_ended(self, event: TaskEnded) -> None:
        task_id = event.task_id
        tool = self._tool(task_id)
        status = event.status.value
        started = self._started.pop(task_id, None)
        self._ready.pop(task_id, None)
        if started is not None:  # the histogram's count is the tasks that ran, by tool and status
            self._metrics.duration.record(
                max(0.0, event.at - started), {TASK_TOOL: tool, TASK_STATUS: status}
            )
        span = self._attempts.pop(task_id, None)
        if span is None:
            return  # skipped, or cancelled before it started: no attempt to close
        span.set_attribute(TASK_STATUS, status)
        if event.error is not None:
            _fail(span, event.error)
        elif _STATUS.get(event.status) is StatusCode.OK:
            span.set_status(Status(StatusCode.OK))
        span.end(int(event.at * _NS))

    def _run_ended(self, event: RunEnded) -> None:
        self._registry.pop(self.run_id, None)
        result = event.result
        for attempt in self._attempts.values():  # defensive: every attempt ends with its task
            attempt.end(int(event.at * _NS))
        self._attempts.clear()
        span = self._run_span
        if self._token is not None and trace.get_current_span() is span:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        self._token = None
        self._metrics.run_duration.record(max(0.0, result.duration), {RUN_STATUS: result.status.value})
        if span is None:
            return
        span.set_attribute(RUN_STATUS, result.status.value)
        span.set_attribute(RUN_TASKS, len(result.tasks))
        if result.status is RunStatus.SUCCEEDED:
            span.set_status(Status(StatusCode.OK))
        else:
            span.set_status(Status(StatusCode.ERROR, result.error or result.status.value))
        span.end(int(event.at * _NS))
