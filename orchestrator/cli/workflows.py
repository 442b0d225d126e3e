"""Workflow commands: ``run``, ``validate``, ``graph``, ``schema``, ``tools``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from planners import Problem, Workflow, WorkflowFileError, workflow_json_schema

from ..console import ProgressView, json_default, summary_table
from ..errors import DeviceError, JournalError
from ..events import Event
from ..export import to_dot, to_json, to_mermaid
from ..graph import TaskStatus
from ..report import write_html
from ..result import RunResult
from ..run import Orchestrator
from ..terminal_text import escape_control, escape_for_terminal
from .common import (
    FlowArgument,
    SetOption,
    ToolsOption,
    err,
    fail,
    load_flow,
    make_approver,
    out,
    parse_sets,
    print_problems,
    registry_for,
    watch,
)
from .devices import BrokerOption, LocalAgentsOption, LocalLabelOption, device_executor
from .runs import JournalOption, NoJournalOption, journal_for, run_metadata

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(validate)
    app.command()(graph)
    app.command()(schema)
    app.command("tools")(list_tools)


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
    workflow = load_flow(flow, registry)
    _print_warnings(workflow)
    try:
        inputs = workflow.resolve_inputs(parse_sets(set_), from_strings=True)
        graph = workflow.to_graph()
    except WorkflowFileError as exc:
        print_problems(exc)
        fail(f"{flow}: {exc.problems[0].message if exc.problems else exc}")
    view = None if json_lines else ProgressView(out)

    remote = sorted(task.id for task in graph.tasks.values() if not task.is_local)
    if remote and not broker and not local_agents:
        fail(
            f"{flow}: step {remote[0]!r} runs on a device ({len(remote)} step(s) have a target): "
            "pass --broker URL (or set STEPWEAVE_BROKER), or --local-agents N to start agents here",
            code=2,
        )

    async def execute() -> tuple[RunResult, list[Event], Any]:
        async with device_executor(broker, local_agents, tools or [], local_label) as devices:
            orchestrator = Orchestrator(
                tools=registry,
                max_concurrency=max_concurrency,
                failure_policy="continue" if keep_going else "fail_fast",
                approver=make_approver(yes, view),
                executors={"device": devices} if devices is not None else None,
                env=env or (),
                journal=None if no_journal else journal_for(journal),
            )
            metadata = run_metadata(
                flow, tools, keep_going=keep_going, max_concurrency=max_concurrency, env=env
            )
            async with orchestrator.start(graph, inputs=inputs, metadata=metadata) as handle:
                if orchestrator.journal is not None:
                    err.print(
                        f"run {handle.run_id}, journaled in {orchestrator.journal.where} "
                        f"(continue it with: stepweave resume {handle.run_id})",
                        highlight=False,
                        markup=False,
                        soft_wrap=True,
                    )
                result, events = await watch(handle, view)
                return result, events, handle.graph

    try:
        result, events, final_graph = asyncio.run(execute())
    except KeyboardInterrupt:
        fail("interrupted", code=130)
    except DeviceError as exc:  # the broker or the local agents could not be reached or started
        fail(f"{flow}: {exc}")
    except JournalError as exc:  # the journal file is unusable (it names the file)
        fail(str(exc))
    outputs: dict[str, Any] = {}
    output_problems: WorkflowFileError | None = None
    if result.ok:
        try:
            outputs = workflow.evaluate_outputs(result, inputs)
        except WorkflowFileError as exc:  # reported after the summary: the run itself is kept
            output_problems = exc
    if report is not None:
        path = write_html(report, final_graph, result, events, title=workflow.name)
        if not json_lines:
            err.print(escape_control(f"report: {path}"), highlight=False, markup=False)
    if json_lines:
        print(json.dumps({"event": "workflow_outputs", "outputs": outputs}, default=json_default), flush=True)
    else:
        out.print(summary_table(result))
        if outputs:
            out.print_json(json.dumps(outputs, default=json_default))
    if output_problems is not None:
        print_problems(output_problems)
        first = output_problems.problems[0].message if output_problems.problems else str(output_problems)
        fail(f"{flow}: the steps succeeded but an output cannot be computed: {first}")
    if not result.ok:
        fail(_failure_reason(flow, workflow, result))


def _failure_reason(flow: Path, workflow: Workflow, result: RunResult) -> str:
    for task in result.tasks.values():
        if task.status is TaskStatus.FAILED and task.error is not None:
            step = task.id.split("[", 1)[0]
            line = workflow.line_of(step)
            where = f"{flow}:{line}: " if line else f"{flow}: "
            return f"{where}step {task.id!r} failed: {task.error.type}: {task.error.message}"
    return f"{flow}: run {result.status.value}: {result.error or 'unknown reason'}"


def validate(
    flow: FlowArgument,
    tools: ToolsOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too (for CI).")] = False,
) -> None:
    """Check a workflow without running it; print every problem, not just the first.

    Warnings (an expression pasted into a `sh -c` script or an SQL query) are printed on
    stderr and do not fail the check unless --strict.
    """
    registry = registry_for(tools)
    workflow = load_flow(flow, registry)
    warnings = _print_warnings(workflow)
    if warnings and strict:
        fail(f"{flow}: {len(warnings)} warning(s) (--strict)")
    noted = f" ({len(warnings)} warning(s))" if warnings else ""
    out.print(
        f"[green]✔[/] {escape_for_terminal(str(flow))}: {len(workflow.steps)} steps, valid{noted}",
        highlight=False,
    )


def _print_warnings(workflow: Workflow) -> list[Problem]:
    """Print the workflow's warnings on stderr, one line each; return them."""
    warnings = workflow.warnings()
    for warning in warnings:
        err.print(escape_control(str(warning)), style="yellow", highlight=False, markup=False, soft_wrap=True)
    return warnings


def graph(
    flow: FlowArgument,
    format_: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or json.")] = "mermaid",
    tools: ToolsOption = None,
) -> None:
    """Print the workflow's dependency graph (Mermaid, Graphviz DOT or JSON)."""
    if format_ not in ("mermaid", "dot", "json"):
        fail(f"--format must be mermaid, dot or json, not {format_!r}", code=2)
    workflow = load_flow(flow, registry_for(tools))
    task_graph = workflow.to_graph()
    if format_ == "json":
        print(json.dumps(to_json(task_graph), indent=2))
    elif format_ == "dot":
        print(to_dot(task_graph))
    else:
        print(to_mermaid(task_graph))


def schema() -> None:
    """Print the JSON Schema of workflow files (for editor completion)."""
    print(json.dumps(workflow_json_schema(), indent=2))


def list_tools(
    tools: ToolsOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="OpenAI function-calling JSON.")] = False,
) -> None:
    """List the available tools with their argument schemas."""
    registry = registry_for(tools)
    if json_out:
        print(json.dumps(registry.openai_schemas(), indent=2))
        return
    table = Table(title="tools")
    for column in ("tool", "description", "arguments"):
        table.add_column(column, overflow="fold")
    for item in registry:
        props = item.parameters_schema.get("properties", {})
        required = set(item.parameters_schema.get("required", []))
        args = ", ".join(
            f"{name}{'' if name in required else '?'}: {_type_of(spec)}" for name, spec in props.items()
        )
        table.add_row(item.name, item.description, args)
    out.print(table)


def _type_of(spec: Mapping[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    if "anyOf" in spec:
        return "|".join(_type_of(s) for s in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"
