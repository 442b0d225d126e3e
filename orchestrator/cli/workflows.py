"""Workflow commands that read a workflow without running it: validate, graph, schema,
tools. (``run`` lives in :mod:`.running`: it needs the engine, devices and the journal.)"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..terminal_text import escape_control, escape_for_terminal
from . import common
from .common import FlowArgument, ToolsOption, fail, load_flow, registry_for
from .device_options import BrokerOption, DeviceLabelOption, DeviceOption, NamespaceOption

if TYPE_CHECKING:
    from pathlib import Path

    from planners import Problem, Workflow

__all__ = ["print_warnings", "register"]


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(graph)
    app.command()(schema)
    app.command("tools")(list_tools)


def validate(
    flow: FlowArgument,
    tools: ToolsOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too (for CI).")] = False,
    broker: BrokerOption = None,
    device: DeviceOption = None,
    device_label: DeviceLabelOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Check a workflow without running it; print every problem, not just the first.

    Warnings (an expression pasted into a `sh -c` script or an SQL query) are printed on
    stderr and do not fail the check unless --strict. With --broker, device steps are
    checked against the tools the live devices announce.
    """
    workflow = _load_with_fleet(flow, tools, broker, device, device_label, namespace)
    warnings = print_warnings(workflow)
    if warnings and strict:
        fail(f"{flow}: {len(warnings)} warning(s) (--strict)")
    noted = f" ({len(warnings)} warning(s))" if warnings else ""
    steps = f"{len(workflow.steps)} step{'' if len(workflow.steps) == 1 else 's'}"
    if _plain_stdout():
        print(f"✔ {escape_control(str(flow))}: {steps}, valid{noted}")
        return
    common.out.print(
        f"[green]✔[/] {escape_for_terminal(str(flow))}: {steps}, valid{noted}",
        highlight=False,
    )


def _plain_stdout() -> bool:
    """Whether Rich would print plain text to stdout anyway (a pipe or a file, nothing
    forcing colour): then the one line of a valid workflow is printed without importing
    Rich (~15 ms of a ~200 ms command that CI and editors run on every save)."""
    if any(os.environ.get(name) for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")):
        return False
    try:
        return not sys.stdout.isatty()
    except ValueError:  # closed
        return False


def _load_with_fleet(
    flow: Path,
    tools: list[str] | None,
    broker: str | None,
    device: list[str] | None,
    labels: list[str] | None,
    namespace: str | None = None,
) -> Workflow:
    """Load and check ``flow``; with a broker, against the tools the live fleet offers too."""
    registry = registry_for(tools)
    if not broker:
        if device or labels:
            fail("--device and --device-label pick devices: pass --broker URL too", code=2)
        return load_flow(flow, registry)
    from .devices import check_fleet, learn_fleet, with_fleet

    fleet = learn_fleet(broker, devices=device, device_labels=labels, namespace=namespace)
    registry = with_fleet(registry, fleet)
    workflow = load_flow(flow, registry)
    check_fleet(str(flow), workflow.to_graph().tasks.values(), registry, fleet, workflow.line_of)
    return workflow


def print_warnings(workflow: Workflow) -> list[Problem]:
    """Print the workflow's warnings on stderr, one line each; return them."""
    warnings = workflow.warnings()
    for warning in warnings:
        common.err.print(
            escape_control(str(warning)), style="yellow", highlight=False, markup=False, soft_wrap=True
        )
    return warnings


def graph(
    flow: FlowArgument,
    format_: Annotated[str, typer.Option("--format", "-f", help="mermaid, dot or json.")] = "mermaid",
    tools: ToolsOption = None,
    broker: BrokerOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Print the workflow's dependency graph (Mermaid, Graphviz DOT or JSON)."""
    if format_ not in ("mermaid", "dot", "json"):
        fail(f"--format must be mermaid, dot or json, not {format_!r}", code=2)
    workflow = _load_with_fleet(flow, _with_tsg_tools(flow, tools), broker, None, None, namespace)
    task_graph = workflow.to_graph()
    from ..export import to_dot, to_json, to_mermaid

    if format_ == "json":
        print(json.dumps(to_json(task_graph), indent=2))
    elif format_ == "dot":
        print(to_dot(task_graph))
    else:
        print(to_mermaid(task_graph))


def _with_tsg_tools(flow: Path, tools: list[str] | None) -> list[str] | None:
    """A workflow compiled from a guide (``stepweave tsg compile``) names the tsg tools: drawing
    its graph needs no --tools flag (only the tools' names and schemas are used here)."""
    try:
        text = flow.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return tools
    if re.search(r"^\s*tool:\s*tsg_(?:judge|manual|repeat)\s*$", text, re.MULTILINE):
        return [*(tools or []), "planners.tsg.workflow_tools"]
    return tools


def schema() -> None:
    """Print the JSON Schema of workflow files (for editor completion)."""
    from planners import workflow_json_schema

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
    from rich.table import Table

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
    common.out.print(table)


def _type_of(spec: Mapping[str, Any]) -> str:
    if "type" in spec:
        return str(spec["type"])
    if "anyOf" in spec:
        return "|".join(_type_of(s) for s in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    return "any"
