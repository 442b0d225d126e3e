"""``stepweave ask "REQUEST"``: an LLM plans the request, the plan runs as it streams, a
joiner answers (or replans). ``--plan-only`` prints the plan without running it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..console import ProgressView, event_json, summary_table
from ..devices import load_tools, parse_labels
from ..errors import DeviceError, PlannerError, WorkflowError
from ..events import Event, RunStarted, TaskAdded
from ..export import to_mermaid
from ..graph import LabelsTarget, Target, Task, TaskGraph
from ..report import write_html
from ..run import Orchestrator
from .common import ToolsOption, err, fail, make_approver, out, registry_for
from .devices import BrokerOption, LocalAgentsOption, LocalLabelOption, device_executor

if TYPE_CHECKING:
    from planners.llm import AskResult

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(ask)


def _describe(task: Task) -> str:
    deps = f"  after {', '.join(sorted(task.dependencies))}" if task.dependencies else ""
    return f"+ {task.id}: {task.tool}({json.dumps(task.args, default=str, ensure_ascii=False)}){deps}"


def ask(
    request: Annotated[str, typer.Argument(help="What to do, in plain words.", show_default=False)],
    tools: ToolsOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (default: $STEPWEAVE_MODEL).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible server (default: $OPENAI_BASE_URL, else OpenAI)."),
    ] = None,
    plan_only: Annotated[
        bool, typer.Option("--plan-only", help="Print the plan (and its graph); run nothing.")
    ] = False,
    json_lines: Annotated[bool, typer.Option("--json", help="Print every event as JSON Lines.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Most steps running at once.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every approval gate.")] = False,
    broker: BrokerOption = None,
    local_agents: LocalAgentsOption = 0,
    local_label: LocalLabelOption = None,
    on: Annotated[
        list[str] | None,
        typer.Option(
            "--on", help="With devices: run tasks on devices with this label, key=value (repeatable)."
        ),
    ] = None,
) -> None:
    """Plan a request with an LLM, run the plan while it streams, and print the answer.

    With ``--broker`` or ``--local-agents`` every planned task runs on a device agent
    (``--on key=value`` picks devices by label), and the model plans with the tools of the
    ``--tools`` modules only: the ones the agents offer.
    """
    # Imported here: the openai client costs a third of a second every other command skips.
    from planners.llm import LLMConfigError, LLMPlanner, PlannerCallEnded, check_configuration

    try:
        config = check_configuration(model, base_url=base_url)
    except LLMConfigError as exc:
        fail(str(exc), code=2)
    remote = bool(broker or local_agents)
    target: Target = "local"
    if remote:
        if not tools:
            fail("--broker/--local-agents need --tools: the modules the device agents offer", code=2)
        try:
            registry = load_tools(tools)
            target = LabelsTarget(labels=parse_labels(on)) if on else "any-device"
        except ValueError as exc:
            fail(str(exc), code=2)
    elif on:
        fail("--on picks devices: pass --broker URL or --local-agents N too", code=2)
    else:
        registry = registry_for(tools)
    planner = LLMPlanner(config.model, base_url=config.base_url, api_key=config.api_key, target=target)

    if plan_only:

        async def show_plan() -> None:
            tasks: list[Task] = []
            async for task in planner.plan_stream(request, registry):
                tasks.append(task)
                if json_lines:
                    planned = {"id": task.id, "tool": task.tool, "args": task.args}
                    record = {"event": "planned", "task": {**planned, "deps": sorted(task.dependencies)}}
                    print(json.dumps(record, default=str), flush=True)
                else:
                    out.print(_describe(task), highlight=False, markup=False)
            if not json_lines:
                out.print(to_mermaid(TaskGraph(tasks, name=request[:80])), highlight=False, markup=False)

        try:
            asyncio.run(show_plan())
        except PlannerError as exc:
            fail(f"the model gave no usable plan: {exc}")
        return

    view = None if json_lines else ProgressView(out)
    events: list[Event] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if view is None:
            print(event_json(event), flush=True)
            return
        if isinstance(event, TaskAdded):
            # The DAG as it forms: each task is printed the moment the model finishes it.
            err.print(_describe(event.task), highlight=False, markup=False)
        elif isinstance(event, PlannerCallEnded):
            usage = event.usage
            err.print(
                f"· {usage.kind} call: {usage.prompt_tokens}+{usage.completion_tokens} tokens, "
                f"{usage.seconds:.2f}s",
                highlight=False,
                markup=False,
            )
        view.update(event)

    async def execute() -> AskResult:
        async with device_executor(broker, local_agents, tools or [], local_label) as devices:
            orchestrator = Orchestrator(
                tools=registry,
                max_concurrency=max_concurrency,
                # A failed step goes back to the model at once (the joiner may also replan).
                failure_policy="replan",
                replanner=planner.replanner,
                approver=make_approver(yes, view),
                executors={"device": devices} if devices is not None else None,
            )
            return await planner.ask(request, orchestrator, on_event=on_event)

    try:
        result = asyncio.run(execute())
    except PlannerError as exc:
        fail(f"planning failed: {exc}")
    except DeviceError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)

    if report is not None:
        # The graph grew while the plan streamed (and with replans): rebuild it from events.
        planned: dict[str, Task] = {}
        for event in events:
            if isinstance(event, RunStarted):
                planned.update((task.id, task) for task in event.graph)
            elif isinstance(event, TaskAdded):
                planned[event.task.id] = event.task
        try:
            graph = TaskGraph(planned.values(), name=request[:80])
        except WorkflowError as exc:  # a replan removed a task another still names
            err.print(f"no report: the planned graph does not hold together: {exc}", highlight=False)
        else:
            path = write_html(report, graph, result.run_result, events)
            err.print(f"report: {path}", highlight=False)
    usage = result.usage
    if json_lines:
        summary: dict[str, Any] = {"event": "answer", **result.to_dict()}
        print(json.dumps(summary, default=str), flush=True)
        return
    if result.run_result.tasks:
        out.print(summary_table(result.run_result))
    err.print(
        f"{len(usage.calls)} model call(s), {usage.prompt_tokens}+{usage.completion_tokens} tokens, "
        f"{result.replans} replan(s), {result.duration:.2f}s",
        highlight=False,
    )
    out.print(result.answer, highlight=False, markup=False)
