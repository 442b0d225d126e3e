"""MCP servers' tools for the commands that run things: ``run`` (a workflow's
``mcp_servers:``), ``ask --mcp NAME=CMD`` and ``agent --mcp NAME=CMD``.

The servers start when the run starts and stop when it ends (``tools.mcp.McpServers``);
``mcp`` (the SDK) is imported only then, so commands without MCP servers never pay for it.
"""

from __future__ import annotations

import shlex
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from planners import Workflow
    from tools import ToolRegistry
    from tools.mcp import McpServer

__all__ = ["McpOption", "parse_mcp_options", "registered_tools", "workflow_tools"]

McpOption = Annotated[
    list[str] | None,
    typer.Option(
        "--mcp",
        help="An MCP server whose tools become NAME.TOOL: NAME=COMMAND (split like a shell line, "
        "run without one) or NAME=http://HOST/mcp (repeatable).",
    ),
]


def parse_mcp_options(values: list[str] | None) -> list[McpServer]:
    """``NAME=CMD`` / ``NAME=URL`` options as server specs (``typer.BadParameter`` if malformed)."""
    from tools.mcp import McpServer

    servers: list[McpServer] = []
    for value in values or ():
        name, sep, rest = value.partition("=")
        rest = rest.strip()
        if not sep or not name.strip() or not rest:
            raise typer.BadParameter(f"{value!r}: expected NAME=COMMAND or NAME=URL", param_hint="--mcp")
        try:
            if rest.startswith(("http://", "https://")):
                servers.append(McpServer(name.strip(), url=rest))
            else:
                servers.append(McpServer(name.strip(), command=shlex.split(rest)))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--mcp") from None
        if servers[-1].name in {server.name for server in servers[:-1]}:
            raise typer.BadParameter(f"{servers[-1].name!r} is named twice", param_hint="--mcp")
    return servers


@asynccontextmanager
async def registered_tools(servers: list[McpServer], registry: ToolRegistry) -> AsyncIterator[ToolRegistry]:
    """Start ``servers`` and register their tools into ``registry`` (the same object, so an
    approval policy holding it sees them) for as long as the block runs."""
    if not servers:
        yield registry
        return
    from tools.mcp import McpServers

    async with McpServers(servers) as running:
        for tool in running.tools:
            registry.register(tool)
        yield registry


@asynccontextmanager
async def workflow_tools(workflow: Workflow, registry: ToolRegistry) -> AsyncIterator[ToolRegistry]:
    """``registry`` plus the tools of the workflow's ``mcp_servers:`` while the block runs;
    the workflow is checked again with them (``WorkflowFileError`` naming the lines)."""
    if not workflow.mcp_servers:
        yield registry
        return
    from planners import WorkflowFileError
    from tools import ToolRegistry

    async with workflow.start_mcp_servers() as running:
        tools = ToolRegistry([*registry, *running.tools])
        problems = workflow.problems(tools)
        if problems:
            raise WorkflowFileError(problems)
        yield tools
