"""The ``stepweave`` command line: the one composition root of engine, planners and tools.

Exit codes: 0 success, 1 failure (a failed run or an invalid workflow, with a one-line
reason on stderr), 2 bad usage.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.prompt import Confirm
from rich.table import Table

from planners import Workflow, WorkflowFileError, load_workflow, workflow_json_schema
from tools import ToolRegistry
from tools.builtin import builtin_registry

from .console import ProgressView, event_json, summary_table
from .errors import StepweaveError
from .events import Event
from .export import to_dot, to_json, to_mermaid
from .graph import Task, TaskStatus
from .report import write_html
from .result import RunResult
from .run import Orchestrator

__all__ = ["app", "main"]

app = typer.Typer(
    name="stepweave",
    help="Run dependency graphs of steps in parallel: YAML workflows, tools, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console()
_err = Console(stderr=True)

ToolsOption = Annotated[
    list[str] | None,
    typer.Option("--tools", help="Module (name or .py path) whose @tool functions become available."),
]
FlowArgument = Annotated[Path, typer.Argument(help="The workflow YAML file.", show_default=False)]


def main() -> None:
    """Console-script entry point."""
    app()


def _fail(message: str, code: int = 1) -> NoReturn:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _registry(modules: list[str] | None) -> ToolRegistry:
    """Built-in tools plus every ``@tool`` in the user's modules."""
    registry = builtin_registry()
    for spec in modules or ():
        try:
            module = _import(spec)
            found = registry.register_module(module)
        except (ImportError, OSError, SyntaxError, StepweaveError, TypeError) as exc:
            _fail(f"--tools {spec}: {type(exc).__name__}: {exc}")
        if not found:
            _fail(f"--tools {spec}: the module defines no @tool functions")
    return registry


def _import(spec: str) -> Any:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ImportError(f"no such file: {spec}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        return module
    # Like `python -m`: modules next to the user's files are importable by name.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(spec)


def _load(flow: Path, registry: ToolRegistry) -> Workflow:
    try:
        workflow = load_workflow(flow)
    except WorkflowFileError as exc:
        _print_problems(exc)
        _fail(f"{flow}: invalid workflow ({len(exc.problems)} problem(s))")
    problems = workflow.problems(registry)
    if problems:
        _print_problems(WorkflowFileError(problems))
        _fail(f"{flow}: invalid workflow ({len(problems)} problem(s))")
    return workflow


def _print_problems(error: WorkflowFileError) -> None:
    for problem in error.problems:
        _err.print(str(problem), highlight=False, soft_wrap=True, markup=False)


def _parse_sets(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            _fail(f"--set {item!r}: expected name=value", code=2)
        out[name.strip()] = value
    return out


@app.command()
def run(
    flow: FlowArgument,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Input value: name=value (repeatable).")
    ] = None,
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
) -> None:
    """Run a workflow: live progress, a summary, exit code 0 on success and 1 on failure."""
    registry = _registry(tools)
    workflow = _load(flow, registry)
    try:
        inputs = workflow.resolve_inputs(_parse_sets(set_), from_strings=True)
        graph = workflow.to_graph()
    except WorkflowFileError as exc:
        _print_problems(exc)
        _fail(f"{flow}: {exc.problems[0].message if exc.problems else exc}")
    if yes:
        # The built-in `approve` tool reads this: --yes approves every gate of this run.
        os.environ["STEPWEAVE_ASSUME_YES"] = "1"
    view = None if json_lines else ProgressView(_out)

    async def approver(task: Task, args: Mapping[str, Any]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        if view is not None:
            view.pause()
        try:
            question = f"Step [bold]{task.id}[/] ({task.tool} {json.dumps(args)}) needs approval. Run it?"
            return await asyncio.to_thread(Confirm.ask, question, console=_err, default=False)
        finally:
            if view is not None:
                view.resume()

    orchestrator = Orchestrator(
        tools=registry,
        max_concurrency=max_concurrency,
        failure_policy="continue" if keep_going else "fail_fast",
        approver=approver,
    )

    async def execute() -> tuple[RunResult, list[Event], Any]:
        events: list[Event] = []
        async with orchestrator.start(graph, inputs=inputs) as handle:
            if view is not None and _out.is_terminal:
                with view.live():
                    async for event in handle.events():
                        view.update(event)
                        events.append(event)
            else:
                async for event in handle.events():
                    events.append(event)
                    if view is not None:
                        view.update(event)
                    else:
                        print(event_json(event), flush=True)
            return await handle.wait(), events, handle.graph

    try:
        result, events, final_graph = asyncio.run(execute())
    except KeyboardInterrupt:
        _fail("interrupted", code=130)
    outputs = workflow.evaluate_outputs(result, inputs) if result.ok else {}
    if report is not None:
        path = write_html(report, final_graph, result, events, title=workflow.name)
        if not json_lines:
            _err.print(f"report: {path}", highlight=False)
    if json_lines:
        print(json.dumps({"event": "workflow_outputs", "outputs": outputs}, default=str), flush=True)
    else:
        _out.print(summary_table(result))
        if outputs:
            _out.print_json(json.dumps(outputs, default=str))
    if not result.ok:
        _fail(_failure_reason(flow, workflow, result))


def _failure_reason(flow: Path, workflow: Workflow, result: RunResult) -> str:
    for task in result.tasks.values():
        if task.status is TaskStatus.FAILED and task.error is not None:
            step = task.id.split("[", 1)[0]
            line = workflow.line_of(step)
            where = f"{flow}:{line}: " if line else f"{flow}: "
            return f"{where}step {task.id!r} failed: {task.error.type}: {task.error.message}"
    return f"{flow}: run {result.status.value}: {result.error or 'unknown reason'}"


@app.command()
def validate(flow: FlowArgument, tools: ToolsOption = None) -> None:
    """Check a workflow without running it; print every problem, not just the first."""
    registry = _registry(tools)
    workflow = _load(flow, registry)
    _out.print(f"[green]✔[/] {flow}: {len(workflow.steps)} steps, valid", highlight=False)


@app.command()
def graph(
    flow: FlowArgument,
    format_: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or json.")] = "mermaid",
    tools: ToolsOption = None,
) -> None:
    """Print the workflow's dependency graph (Mermaid, Graphviz DOT or JSON)."""
    if format_ not in ("mermaid", "dot", "json"):
        _fail(f"--format must be mermaid, dot or json, not {format_!r}", code=2)
    workflow = _load(flow, _registry(tools))
    task_graph = workflow.to_graph()
    if format_ == "json":
        print(json.dumps(to_json(task_graph), indent=2))
    elif format_ == "dot":
        print(to_dot(task_graph))
    else:
        print(to_mermaid(task_graph))


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editor completion)."""
    print(json.dumps(workflow_json_schema(), indent=2))


@app.command("tools")
def list_tools(
    tools: ToolsOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="OpenAI function-calling JSON.")] = False,
) -> None:
    """List the available tools with their argument schemas."""
    registry = _registry(tools)
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
    _out.print(table)


def _type_of(spec: Mapping[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    if "anyOf" in spec:
        return "|".join(_type_of(s) for s in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"


if __name__ == "__main__":  # `python -m orchestrator.cli`
    main()
