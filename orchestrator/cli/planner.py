"""``stepweave ask "REQUEST"``: an LLM plans the request, the plan runs as it streams, a
joiner answers (or replans). ``--plan-only`` prints the plan without running it.

A plan is untrusted input: the model may follow instructions hidden in a page it fetched
or a file it read. So the model is offered the read-only built-ins unless told otherwise,
every call that may change something needs approval (a terminal prompt, ``--allow TOOL``
or ``--yes``), environment variables reach a program only when named with
``--allow-env``, and the whole ask has a deadline (``--timeout``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from tools.mcp import McpError

from ..console import ProgressView, event_json, summary_table
from ..devices import load_tools, parse_labels
from ..errors import DeviceError, PlannerError, WorkflowError
from ..events import Event, RunEnded, RunStarted, TaskAdded
from ..export import to_mermaid
from ..graph import LabelsTarget, Target, Task, TaskGraph
from ..report import render_html
from ..result import RunResult, RunStatus
from ..run import Orchestrator
from ..terminal_text import escape_control, safe_text
from .approval import ApprovalPolicy, parse_allowed
from .common import ToolsOption, err, fail, make_approver, out
from .devices import (
    BrokerOption,
    DeviceLabelOption,
    DeviceOption,
    LocalAgentsOption,
    LocalLabelOption,
    NamespaceOption,
    device_executor,
    fleet_offer,
    learn_fleet,
)
from .ending import RunEnding
from .mcp_client import McpOption, parse_mcp_options, registered_tools

if TYPE_CHECKING:
    from planners.llm import AskResult, ResponseFormatChoice
    from tools import ToolRegistry

    from ..devices.catalog import FleetPlacement

__all__ = ["DEFAULT_TIMEOUT", "ask_registry", "register"]

#: Per model call (LLMPlanner's defaults): a hung server fails in a minute, a stalled
#: stream in half of one; slow local servers on small machines may need more.
DEFAULT_FIRST_TOKEN_TIMEOUT, DEFAULT_IDLE_TIMEOUT = 60.0, 30.0
#: Seconds an ask may take in all (planning, every step, answering) unless --timeout says.
DEFAULT_TIMEOUT = 900.0


_FORMATS = ("auto", "json_schema", "json_object", "prompt")


def register(app: typer.Typer) -> None:
    app.command()(ask)


def _describe(task: Task) -> str:
    deps = f"  after {', '.join(sorted(task.dependencies))}" if task.dependencies else ""
    line = f"+ {task.id}: {task.tool}({json.dumps(task.args, default=str, ensure_ascii=False)}){deps}"
    return escape_control(line, multiline=False)  # the model wrote it: show, never obey


_UNKNOWN_TOOL = re.compile(r"unknown tool '([A-Za-z0-9_.-]+)'")


def _hint_not_offered(events: list[Event], registry: ToolRegistry) -> None:
    """Say so when the model wanted a built-in that ask did not offer (and how to offer it)."""
    from planners.llm import PlanRejected
    from tools.builtin import BUILTIN_TOOLS

    builtins = {t.name for t in BUILTIN_TOOLS}
    wanted = sorted(
        {
            name
            for event in events
            if isinstance(event, PlanRejected)
            for problem in event.problems
            for name in _UNKNOWN_TOOL.findall(problem)
            if name in builtins and name not in registry
        }
    )
    for name in wanted:
        err.print(
            f"note: the model wanted the {name} tool, which ask offers only with --allow {name} "
            f"(its steps approved), --tools tools.builtin (asked at the terminal) or --yes",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


def _can_run(name: str, everything: bool, allow: frozenset[str]) -> bool:
    """Whether a built-in could do anything here (a tool that cannot only misleads the model).

    ``python`` calls registered functions only, so without any it is not offered; ``approve``
    asks a person, so it needs a terminal (or ``--yes`` approving).
    Naming one with ``--allow`` offers it regardless.
    """
    if name in allow:
        return True
    if name == "python":
        from tools.builtin import registered_callables

        return bool(registered_callables())
    if name == "approve":
        return everything or sys.stdin.isatty()
    return True


def ask_registry(modules: list[str] | None, allow: frozenset[str], everything: bool) -> ToolRegistry:
    """The tools offered to the model on this machine.

    The built-ins that have read-only calls (``wait``, ``read_file``, ``http``, ``sql``,
    ``approve``), every built-in when ``everything`` (``--yes``), the built-ins named in
    ``allow``, and the tools of the ``--tools`` modules (``--tools tools.builtin``
    offers every built-in, each call that changes something asked about at the terminal).
    """
    from tools import ToolRegistry, load_tools
    from tools.builtin import BUILTIN_TOOLS

    wanted = [t for t in BUILTIN_TOOLS if everything or t.read_only is not False or t.name in allow]
    try:
        registry = load_tools(modules or (), into=ToolRegistry(t for t in wanted if t.name != "python"))
    except ValueError as exc:
        fail(str(exc))
    # Checked after the modules loaded: they are what registers python's callables.
    for late in (t for t in wanted if t.name == "python" and t.name not in registry):
        if _can_run(late.name, everything, allow):
            registry.register(late)
    return ToolRegistry(t for t in registry if _can_run(t.name, everything, allow))


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
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Approve every step (and offer the model every built-in tool)."),
    ] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="TOOL",
            help="Approve every step of this tool, and offer it to the model if it is a built-in "
            "(repeatable).",
        ),
    ] = None,
    allow_env: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-env",
            metavar="NAME",
            help="Let a shell step pass this environment variable to its program (repeatable).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0, help="Seconds the whole ask may take; 0 for no limit.", show_default=True
        ),
    ] = DEFAULT_TIMEOUT,
    first_token_timeout: Annotated[
        float,
        typer.Option(
            "--first-token-timeout",
            min=0,
            help="Seconds a model call may send nothing before it fails, naming the server "
            "(a hung server); 0 for no limit.",
            show_default=True,
        ),
    ] = DEFAULT_FIRST_TOKEN_TIMEOUT,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            min=0,
            help="Seconds a model's answer may stall mid-stream before the call fails; 0 for no limit.",
            show_default=True,
        ),
    ] = DEFAULT_IDLE_TIMEOUT,
    response_format: Annotated[
        str,
        typer.Option(
            "--response-format",
            help="How to ask the server for JSON: auto (probe json_schema, json_object, prompt and "
            "remember per server), or force one of json_schema, json_object, prompt.",
        ),
    ] = "auto",
    broker: BrokerOption = None,
    local_agents: LocalAgentsOption = 0,
    local_label: LocalLabelOption = None,
    device: DeviceOption = None,
    device_label: DeviceLabelOption = None,
    namespace: NamespaceOption = None,
    on: Annotated[
        list[str] | None,
        typer.Option(
            "--on", help="With devices: run tasks on devices with this label, key=value (repeatable)."
        ),
    ] = None,
    mcp: McpOption = None,
) -> None:
    """Plan a request with an LLM, run the plan while it streams, and print the answer.

    The model is offered the read-only built-ins (wait, read_file, http, sql), the
    built-ins named by ``--allow``, every built-in with ``--yes``, and the tools of the
    ``--tools`` modules. A planned step that may change something (shell, write_file,
    python, http POST, sql with write, your tools unless declared read-only) runs only
    when approved: at a terminal you are asked; otherwise ``--allow TOOL`` or ``--yes``
    approves it, and without them it is refused and ask exits 1.

    With ``--broker`` the model plans with the tools the live devices announce (``--tools``
    modules are local copies, used to validate) and is told where each runs; every planned
    task runs on a device (``--on key=value`` picks devices by label). A device tool is
    read-only only if its devices announce it so. With ``--local-agents`` the agents offer
    the ``--tools`` modules.

    ``--mcp NAME=COMMAND`` (or ``NAME=URL``) starts an MCP server for the ask and offers its
    tools as NAME.TOOL; one is read-only only if the server annotates it so.
    """
    # Imported here: the openai client costs a third of a second every other command skips.
    from planners.llm import LLMConfigError, LLMPlanner, PlannerCallEnded, ServerMemory, check_configuration

    try:
        config = check_configuration(model, base_url=base_url)
    except LLMConfigError as exc:
        fail(str(exc), code=2)
    if response_format not in _FORMATS:
        fail(f"--response-format {response_format!r}: use one of {', '.join(_FORMATS)}", code=2)
    remote = bool(broker or local_agents)
    mcp_servers = parse_mcp_options(mcp)
    if mcp_servers and remote:
        fail("--mcp servers run here: they do not combine with --broker or --local-agents", code=2)
    target: Target = "local"
    placement: FleetPlacement | None = None
    allowed = parse_allowed(allow)
    if broker and not local_agents:
        # The fleet is the contract: the model plans with what live devices offer, and
        # sees where each tool runs; --tools modules are local copies, for validation.
        try:
            target = LabelsTarget(labels=parse_labels(on)) if on else "any-device"
            local = load_tools(tools or [])
        except ValueError as exc:
            fail(str(exc), code=2)
        fleet = learn_fleet(broker, devices=device, device_labels=device_label, namespace=namespace)
        registry, placement = fleet_offer(local, fleet, target)
        if not len(registry):
            fail(f"no live device on {fleet.url} offers a tool ({fleet.summary()})")
        for name in sorted(t.name for t in local if t.name not in registry):
            err.print(
                f"note: no live device offers {name} (from --tools): the model is not offered it",
                highlight=False,
                markup=False,
            )
    elif remote:
        if not tools:
            fail("--local-agents needs --tools: the modules the device agents offer", code=2)
        try:
            registry = load_tools(tools)
            target = LabelsTarget(labels=parse_labels(on)) if on else "any-device"
        except ValueError as exc:
            fail(str(exc), code=2)
    elif on:
        fail("--on picks devices: pass --broker URL or --local-agents N too", code=2)
    else:
        registry = ask_registry(tools, allowed, everything=yes)
    mcp_names = {server.name for server in mcp_servers}  # their tools are known once they run
    unknown = sorted(name for name in allowed if name not in registry and name.split(".")[0] not in mcp_names)
    if unknown:
        known = ", ".join(sorted(t.name for t in registry))
        fail(f"--allow {unknown[0]}: no such tool here (the model is offered: {known})", code=2)
    allowed_env = parse_allowed(allow_env)
    bad_env = sorted(
        name for name in allowed_env if not name.replace("_", "a").isalnum() or name[0].isdigit()
    )
    if bad_env:
        fail(f"--allow-env {bad_env[0]!r}: not an environment variable name", code=2)
    policy = ApprovalPolicy(
        yes=yes, allow_tools=allowed, read_only=registry, allow_env=allowed_env, suggest_allow=True
    )
    planner = LLMPlanner(
        config.model,
        base_url=config.base_url,
        api_key=config.api_key,
        target=target,
        placement=placement,
        response_format=cast("ResponseFormatChoice", response_format),
        first_token_timeout=first_token_timeout or None,
        idle_timeout=idle_timeout or None,
        # What each server accepted is remembered across runs: no probing every time.
        server_memory=ServerMemory.persistent(),
    )

    if plan_only:
        rejected: list[Event] = []

        async def show_plan() -> None:
            tasks: list[Task] = []
            async with registered_tools(mcp_servers, registry):
                async for task in planner.plan_stream(request, registry, emit=rejected.append):
                    tasks.append(task)
                    if json_lines:
                        planned = {"id": task.id, "tool": task.tool, "args": task.args}
                        record = {"event": "planned", "task": {**planned, "deps": sorted(task.dependencies)}}
                        print(json.dumps(record, default=str), flush=True)
                    else:
                        out.print(_describe(task), highlight=False, markup=False)
            if not json_lines:
                mermaid = to_mermaid(TaskGraph(tasks, name=request[:80]))
                out.print(safe_text(mermaid), highlight=False)

        try:
            asyncio.run(show_plan())
        except PlannerError as exc:
            _hint_not_offered(rejected, registry)
            fail(f"the model gave no usable plan: {exc}")
        except McpError as exc:
            fail(str(exc))
        return

    view = None if json_lines else ProgressView(out)
    approver = make_approver(yes, view, policy)
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
            err.print(f"· {event.usage.describe()}", highlight=False, markup=False)
        view.update(event)

    async def execute() -> AskResult:
        async with (
            registered_tools(mcp_servers, registry),
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
            if placement is not None and devices is not None:
                await devices.settle()  # this connection's view of the fleet, before it is used
                placement.fleet = devices.fleet  # from now on, the live fleet
            orchestrator = Orchestrator(
                tools=registry,
                max_concurrency=max_concurrency,
                # A failed step goes back to the model at once (the joiner may also replan).
                failure_policy="replan",
                replanner=planner.replanner,
                approver=approver,
                prompter=approver.prompter,
                executors={"device": devices} if devices is not None else None,
            )
            return await planner.ask(request, orchestrator, on_event=on_event, time_limit=timeout or None)

    started = time.monotonic()

    async def outcome() -> tuple[AskResult | None, str | None]:
        """The result, or why there is none: the report is written either way."""
        try:
            return await execute(), None
        except PlannerError as exc:
            if timeout and time.monotonic() - started >= timeout:
                return None, f"ask timed out after {timeout:g}s (--timeout); the run was cancelled"
            return None, f"planning failed: {exc}"
        except (DeviceError, McpError) as exc:
            return None, str(exc)

    # Ctrl-C ends an ask as it ends every run command (an ask is not journaled: no hint).
    result, problem = RunEnding("ask", json_lines).execute(outcome())

    answer = _real_answer(result.answer) if result is not None else None
    if report is not None:  # written whatever happened: a failed ask is when it is needed most
        _write_report(report, request, answer, problem, events)
    if result is None:
        _hint_not_offered(events, registry)
        fail(problem or "the ask ended without a result")
    usage = result.usage
    if json_lines:
        summary: dict[str, Any] = {"event": "answer", **result.to_dict()}
        print(json.dumps(summary, default=str), flush=True)
    else:
        if result.run_result.tasks:
            out.print(summary_table(result.run_result))
        err.print(
            f"{len(usage.calls)} model call(s), {usage.describe_tokens()}, "
            f"{result.replans} replan(s), {result.duration:.2f}s",
            highlight=False,
        )
        # The model wrote the answer (perhaps from a page it fetched): show it, never obey it.
        if answer:
            out.print(safe_text(answer), highlight=False)
    _hint_not_offered(events, registry)
    if approver.refused:
        fail(f"{len(approver.refused)} step(s) were not approved, so the request was not carried out in full")
    if not result.run_result.ok:
        failed = sorted(tid for tid, r in result.run_result.tasks.items() if r.status.value == "failed")
        which = f" (failed: {', '.join(failed)})" if failed else ""
        fail(f"the run {result.run_result.status.value}{which}; any answer above is from what finished")
    if not answer:
        fail("the model gave no answer")


#: What a model copies from a prompt's format line instead of answering ("<the answer>").
_PLACEHOLDER = re.compile(r"^\s*<[^<>]{0,80}>\s*$")


def _real_answer(answer: str) -> str | None:
    """The answer, or ``None`` when it is empty or a template placeholder."""
    return None if not answer.strip() or _PLACEHOLDER.match(answer) else answer


def _write_report(
    path: Path, request: str, answer: str | None, problem: str | None, events: list[Event]
) -> None:
    """The run report with the ask's own section: request, answer, model calls, plans."""
    from planners.llm.report import ask_section, with_ask_section

    # The graph grew while the plan streamed (and with replans): rebuild it from events.
    planned: dict[str, Task] = {}
    run_result: RunResult | None = None
    for event in events:
        if isinstance(event, RunStarted):
            planned.update((task.id, task) for task in event.graph)
        elif isinstance(event, TaskAdded):
            planned[event.task.id] = event.task
        elif isinstance(event, RunEnded):
            run_result = event.result
    try:
        graph = TaskGraph(planned.values(), name=request[:80])
    except WorkflowError:  # a replan removed a task another still names: show what ran
        graph = TaskGraph(name=request[:80])
    if run_result is None:  # planning failed before the run could start
        now = time.time()
        run_result = RunResult("", RunStatus.FAILED, {}, now, now, error=problem)
    page = render_html(graph, run_result, events, title=request[:80])
    page = with_ask_section(page, ask_section(request, answer, problem, events))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    err.print(f"report: {path}", highlight=False)
