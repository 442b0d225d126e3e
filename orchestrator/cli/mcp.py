"""``stepweave mcp serve``: workflows (and, when allowed, ``ask``) as tools of an MCP server.

Over stdio (an MCP client starts the command) or streamable HTTP (``--transport http``,
on 127.0.0.1 unless ``--host`` says otherwise). The MCP SDK is imported only when the
command runs: ``stepweave --help`` does not pay for it. What is served, and how a call
runs, is :mod:`.mcp_server`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .approval import ApprovalPolicy, parse_allowed
from .common import ToolsOption, err, fail, registry_for
from .runs import JournalOption, NoJournalOption, journal_for, run_metadata

if TYPE_CHECKING:
    from mcp.server import Server, ServerRequestContext

    from ..run import Orchestrator
    from .mcp_server import ServedWorkflow, UnattendedApproval

__all__ = ["register"]

mcp_app = typer.Typer(
    name="mcp",
    help="Model Context Protocol: serve workflows (and ask) as tools to MCP clients.",
    no_args_is_help=True,
)

_TRANSPORTS = ("stdio", "http")


def register(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


@mcp_app.command()
def serve(
    workflows: Annotated[
        Path | None,
        typer.Option(
            "--workflows",
            metavar="DIR",
            help="Serve every workflow file in this folder (*.yaml, *.yml, recursively) as a tool.",
        ),
    ] = None,
    allow_ask: Annotated[
        bool,
        typer.Option(
            "--allow-ask",
            help="Also serve `ask`: an LLM plans a request and the plan runs (as `stepweave ask`).",
        ),
    ] = False,
    transport: Annotated[
        str, typer.Option("--transport", metavar="stdio|http", help="stdio, or streamable HTTP.")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="With --transport http: the address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int,
        typer.Option("--port", min=0, max=65535, help="With --transport http: the port (0: any free one)."),
    ] = 8000,
    tools: ToolsOption = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Approve every step that needs approval (nobody can be asked)."),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", metavar="TOOL", help="Approve every step of this tool (repeatable)."),
    ] = None,
    allow_env: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-env",
            metavar="NAME",
            help="In ask: let a shell step pass this environment variable to its program (repeatable).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="In ask: model name (default: $STEPWEAVE_MODEL).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="In ask: OpenAI-compatible server (default: $OPENAI_BASE_URL)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, help="In ask: seconds one ask may take; 0 for no limit.")
    ] = 900.0,
    journal: JournalOption = None,
    no_journal: NoJournalOption = False,
) -> None:
    """Serve workflows as MCP tools until the client disconnects (stdio) or until stopped.

    Each workflow file in `--workflows DIR` becomes a tool: its name, its description, its
    inputs as the input schema and its outputs as the output schema. A call runs the
    workflow like `stepweave run` (journaled, progress per finished step) and returns its
    outputs; a failed run is an error result naming the step. Files that are not valid
    workflows are reported on stderr and skipped.

    Nobody can be asked for approval over MCP: a step that needs it runs only with `--yes`
    or `--allow TOOL`, otherwise it is refused. With `--allow-ask`, an `ask` tool plans a
    request with the LLM planner (configured as for `stepweave ask`) under the same rules.
    """
    if transport not in _TRANSPORTS:
        fail(f"--transport {transport!r}: use stdio or http", code=2)
    if workflows is None and not allow_ask:
        fail("nothing to serve: pass --workflows DIR, --allow-ask, or both", code=2)
    if workflows is not None and not workflows.is_dir():
        fail(f"--workflows {workflows}: not a folder", code=2)
    try:
        import mcp  # noqa: F401  (only to say how to install it)
    except ImportError:
        fail("the MCP SDK is not installed: pip install 'stepweave[mcp]'", code=2)
    from .mcp_server import ASK_TOOL, UnattendedApproval, load_workflows

    allowed = parse_allowed(allow)
    registry = registry_for(tools)
    served = (
        load_workflows(workflows, registry, reserved=[ASK_TOOL] if allow_ask else []) if workflows else []
    )
    ask_runner = _ask_runner(tools, allowed, allow_env, yes, model, base_url, timeout) if allow_ask else None
    approval = UnattendedApproval(ApprovalPolicy(yes=yes, allow_tools=allowed, suggest_allow=True))
    orchestrator = _orchestrator(
        registry,
        approval,
        # The tools' own questions (the approve tool) answered by --yes/--allow as the steps are.
        prompter=approval.policy.prompter(),
        journal=None if no_journal else journal_for(journal),
    )
    names = ", ".join([s.name for s in served] + ([ASK_TOOL] if allow_ask else [])) or "none"
    err.print(f"serving tools: {names}", highlight=False, markup=False, soft_wrap=True)
    server = _server(served, orchestrator, approval, ask_runner, tools)

    import anyio

    if transport == "http":
        # Nobody at this terminal answers for MCP clients: no prompt may wait on it.
        _detach_stdin()
        anyio.run(_serve_http, server, host, port)
    else:
        anyio.run(_serve_stdio, server)


def _orchestrator(registry: Any, approver: Any, **options: Any) -> Orchestrator:
    from ..run import Orchestrator

    return Orchestrator(tools=registry, approver=approver, **options)


def _ask_runner(
    tools: list[str] | None,
    allowed: frozenset[str],
    allow_env: list[str] | None,
    yes: bool,
    model: str | None,
    base_url: str | None,
    timeout: float,
) -> Any:
    """The ``ask`` call, set up as ``stepweave ask`` sets it up (tools offered, approval
    policy, model server from the same options and environment)."""
    from planners.llm import LLMConfigError, LLMPlanner, ServerMemory, check_configuration

    from .planner import ask_registry

    try:
        config = check_configuration(model, base_url=base_url)
    except LLMConfigError as exc:
        fail(str(exc), code=2)
    registry = ask_registry(tools, allowed, everything=yes)
    unknown = sorted(name for name in allowed if name not in registry and name not in registry_for(tools))
    if unknown:
        fail(f"--allow {unknown[0]}: no such tool here", code=2)
    policy = ApprovalPolicy(
        yes=yes,
        allow_tools=allowed,
        read_only=registry,
        allow_env=parse_allowed(allow_env),
        suggest_allow=True,
    )
    memory = ServerMemory.persistent()

    async def ask(request: str, approver: Any, on_event: Any) -> Any:
        planner = LLMPlanner(
            config.model,
            base_url=config.base_url,
            api_key=config.api_key,
            server_memory=memory,
        )
        # A failed step goes back to the model at once, as in `stepweave ask`.
        orchestrator = _orchestrator(
            registry,
            approver,
            prompter=approver.prompter,
            failure_policy="replan",
            replanner=planner.replanner,
        )
        return await planner.ask(request, orchestrator, on_event=on_event, time_limit=timeout or None)

    return policy, ask


def _server(
    served: list[ServedWorkflow],
    orchestrator: Orchestrator,
    approval: UnattendedApproval,
    ask_runner: Any,
    tools: list[str] | None,
) -> Server[Any]:
    import mcp_types as types
    from mcp.server import Server

    from .mcp_server import ASK_TOOL, ask_tool, error_result, run_ask, run_workflow

    by_name = {s.name: s for s in served}
    listed = [s.tool() for s in served] + ([ask_tool()] if ask_runner is not None else [])
    schemas = {tool.name: tool.input_schema for tool in listed}

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        async def progress(done: float, total: float | None, message: str) -> None:
            await ctx.session.report_progress(done, total, message)  # no-op without a progressToken

        arguments = params.arguments or {}
        if ask_runner is not None and params.name == ASK_TOOL:
            request = arguments.get("request")
            if not isinstance(request, str) or not request.strip():
                return error_result('ask needs a request: {"request": "what to do"}')
            policy, ask = ask_runner
            return await run_ask(request, ask, policy, progress)
        workflow = by_name.get(params.name)
        if workflow is None:
            return error_result(f"unknown tool {params.name!r} (served: {', '.join(schemas)})")
        metadata = {
            **run_metadata(workflow.path, tools, keep_going=False, max_concurrency=None, env=None),
            "via": "mcp",
        }
        return await run_workflow(workflow, arguments, orchestrator, approval, progress, metadata)

    from importlib.metadata import version

    return Server(
        "stepweave",
        version=version("stepweave"),
        instructions="Each tool runs a stepweave workflow; its result holds the workflow's outputs.",
        get_tool_input_schema=lambda name: schemas.get(name),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _serve_stdio(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def _serve_http(server: Server[Any], host: str, port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(host=host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        fail(f"--host {host} --port {port}: cannot listen: {exc.strerror or exc}")
    # Listening before saying where: a client that reads the address can connect at once.
    listener.listen(128)
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    err.print(f"listening on http://{shown}:{bound}/mcp", highlight=False, markup=False)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[listener])


def _detach_stdin() -> None:
    """Point fd 0 at the null device, as the SDK's stdio transport does: the ``approve``
    tool and the approval rules see no terminal, whoever started the server."""
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
