"""``stepweave run``: a workflow with live progress, devices, the journal and a report.

Its own module because it needs the engine, the device executor and the journal, which
the commands that only read a workflow (:mod:`.workflows`) must not import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from planners import Workflow, WorkflowFileError
from tools.mcp import McpError

from ..console import ProgressView, json_default
from ..events import Event
from ..graph import TaskStatus
from ..result import RunResult
from ..run import Orchestrator
from .common import (
    FlowArgument,
    SetOption,
    ToolsOption,
    fail,
    load_flow,
    make_approver,
    out,
    parse_sets,
    print_problems,
    registry_for,
    watch,
)
from .devices import (
    BrokerOption,
    DeviceLabelOption,
    DeviceOption,
    LocalAgentsOption,
    LocalLabelOption,
    NamespaceOption,
    check_fleet,
    device_executor,
    learn_fleet,
    with_fleet,
)
from .ending import RunEnding
from .mcp_client import workflow_tools
from .runs import JournalOption, NoJournalOption, journal_for, run_metadata
from .workflows import print_warnings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(run)


def run(
    flow: FlowArgument,
    set_: SetOption = None,
    tools: ToolsOption = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print the event stream as JSON Lines.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Most steps running at once.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every approval gate.")] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="On a failure, let independent steps finish.")
    ] = False,
    broker: BrokerOption = None,
    local_agents: LocalAgentsOption = 0,
    local_label: LocalLabelOption = None,
    device: DeviceOption = None,
    device_label: DeviceLabelOption = None,
    namespace: NamespaceOption = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Environment variable expressions may read as env.NAME (repeatable)."),
    ] = None,
    journal: JournalOption = None,
    no_journal: NoJournalOption = False,
) -> None:
    """Run a workflow: live progress, a summary, exit code 0 on success and 1 on failure.

    The run is journaled (see `stepweave runs`): if it is interrupted, `stepweave resume
    RUN_ID` continues it without repeating finished steps.
    """
    registry = registry_for(tools)
    # With a broker, the tools the live devices announce are the contract for device steps.
    fleet = (
        learn_fleet(broker, devices=device, device_labels=device_label, namespace=namespace)
        if broker and not local_agents
        else None
    )
    if fleet is not None:
        registry = with_fleet(registry, fleet)
    workflow = load_flow(flow, registry)
    print_warnings(workflow)
    try:
        inputs = workflow.resolve_inputs(parse_sets(set_), from_strings=True)
        graph = workflow.to_graph()
    except WorkflowFileError as exc:
        print_problems(exc)
        fail(f"{flow}: {exc.problems[0].message if exc.problems else exc}")
    if fleet is not None:
        check_fleet(str(flow), graph.tasks.values(), registry, fleet, workflow.line_of)
    view = None if json_lines else ProgressView(out)

    remote = sorted(task.id for task in graph.tasks.values() if not task.is_local)
    if remote and not broker and not local_agents:
        fail(
            f"{flow}: step {remote[0]!r} runs on a device ({len(remote)} step(s) have a target): "
            "pass --broker URL (or set STEPWEAVE_BROKER), or --local-agents N to start agents here",
            code=2,
        )

    ending = RunEnding(str(flow), json_lines)

    async def execute() -> tuple[RunResult, list[Event], Any]:
        async with (
            workflow_tools(workflow, registry) as run_tools,
            device_executor(
                broker,
                local_agents,
                tools or [],
                local_label,
                devices=device,
                device_labels=device_label,
                namespace=namespace,
            ) as devices,
        ):
            approver = make_approver(yes, view)
            orchestrator = Orchestrator(
                tools=run_tools,
                max_concurrency=max_concurrency,
                failure_policy="continue" if keep_going else "fail_fast",
                approver=approver,
                prompter=approver.prompter,
                executors={"device": devices} if devices is not None else None,
                env=env or (),
                journal=None if no_journal else journal_for(journal),
            )
            metadata = run_metadata(
                flow, tools, keep_going=keep_going, max_concurrency=max_concurrency, env=env
            )
            async with orchestrator.start(graph, inputs=inputs, metadata=metadata) as handle:
                ending.journaled(handle.run_id, orchestrator.journal)
                result, events = await watch(handle, view)
                return result, events, handle.graph

    try:
        result, events, final_graph = ending.execute(execute())
    except McpError as exc:  # an MCP server of the workflow could not be started (it names it)
        fail(f"{flow}: {exc}")
    except WorkflowFileError as exc:  # a step's arguments do not fit its MCP tool's schema
        print_problems(exc)
        fail(f"{flow}: invalid workflow ({len(exc.problems)} problem(s))")
    outputs: dict[str, Any] = {}
    output_problems: WorkflowFileError | None = None
    if result.ok:
        try:
            outputs = workflow.evaluate_outputs(result, inputs)
        except WorkflowFileError as exc:  # reported after the summary: the run itself is kept
            output_problems = exc
    ending.report(report, final_graph, result, events, workflow.name)

    def show_outputs() -> None:
        if outputs:
            out.print_json(json.dumps(outputs, default=json_default))

    ending.summary(result, {"event": "workflow_outputs", "outputs": outputs}, show_outputs)
    if output_problems is not None:
        print_problems(output_problems)
        first = output_problems.problems[0].message if output_problems.problems else str(output_problems)
        fail(f"{flow}: the steps succeeded but an output cannot be computed: {first}")
    ending.finish(result, lambda result: _failure_reason(flow, workflow, result))


def _failure_reason(flow: Path, workflow: Workflow, result: RunResult) -> str:
    for task in result.tasks.values():
        if task.status is TaskStatus.FAILED and task.error is not None:
            step = task.id.split("[", 1)[0]
            line = workflow.line_of(step)
            where = f"{flow}:{line}: " if line else f"{flow}: "
            return f"{where}step {task.id!r} failed: {task.error.type}: {task.error.message}"
    return f"{flow}: run {result.status.value}: {result.error or 'unknown reason'}"
