"""``stepweave tsg``: troubleshooting guides (Markdown runbooks) — compile, lint, run.

``run`` compiles the guide, then runs it like a workflow: independent checks in parallel,
mutating commands only after approval (``--yes`` approves them all), conditions decided by
their measurable test, an LLM judge (``--llm``) or the operator. ``--dry-run`` prints the
plan with every command's inputs filled in and executes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel
from rich.table import Table

from planners import WorkflowFileError
from planners.tsg import (
    CompiledGuide,
    ConditionJudge,
    GuideError,
    LLMJudge,
    assist_guide,
    compile_guide,
    lint_guide,
    load_guide,
    tsg_tools,
)
from tools import ToolRegistry

from ..console import ProgressView
from ..devices import parse_labels
from ..errors import PlannerError
from ..events import Event
from ..graph import LabelsTarget, Target, TaskGraph, TaskStatus
from ..result import RunResult
from ..run import Orchestrator
from ..terminal_text import escape_control, safe_text
from .common import (
    SetOption,
    ToolsOption,
    err,
    fail,
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
from .runs import JournalOption, NoJournalOption, journal_for, run_metadata

if TYPE_CHECKING:
    from planners.llm import LLMConfig

__all__ = ["register"]

tsg_app = typer.Typer(
    help="Troubleshooting guides: compile Markdown runbooks into workflows, lint them, run them safely.",
    no_args_is_help=True,
)
GuideArgument = Annotated[Path, typer.Argument(help="The Markdown runbook.", show_default=False)]
_INPUT_REFERENCE = re.compile(r"\$\{\{\s*inputs\.(\w+)\s*\}\}")


def register(app: typer.Typer) -> None:
    app.add_typer(tsg_app, name="tsg")


LLMOption = Annotated[
    bool,
    typer.Option(
        "--llm",
        help="Use the LLM (OPENAI_BASE_URL / OPENAI_API_KEY) for prose-only steps and conditions.",
    ),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model for --llm (default: STEPWEAVE_MODEL).")
]


def _llm_config(llm: bool, model: str | None) -> LLMConfig | None:
    if not llm:
        return None
    # Imported here: the openai client costs a third of a second every other command skips.
    from planners.llm import LLMConfigError, check_configuration

    try:
        return check_configuration(model)
    except LLMConfigError as exc:
        fail(f"--llm: {exc}", code=2)


PlanOption = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="A reviewed PlanDAG of this guide (from --format plandag): its steps, edges and conditions "
        "are used instead of reading them again. Commands still come from the guide.",
    ),
]


def _compile(path: Path, config: LLMConfig | None = None, plan_path: Path | None = None) -> CompiledGuide:
    try:
        guide = load_guide(path)
    except GuideError as exc:
        fail(str(exc))
    if plan_path is not None:
        from planners.tsg.plan import PlanError, plan_from_plandag

        try:
            data = json.loads(plan_path.read_text(encoding="utf-8"))
            plan = plan_from_plandag(data, "\n".join(guide.lines), str(path))
        except (OSError, ValueError) as exc:
            problems = exc.problems if isinstance(exc, PlanError) else [str(exc)]
            for problem in problems:
                err.print(escape_control(f"{plan_path}: {problem}"), highlight=False, markup=False)
            fail(f"--plan {plan_path}: cannot be used with {path}")
        return compile_guide(guide, plan)
    if config is not None:
        try:
            changes = asyncio.run(
                assist_guide(guide, model=config.model, base_url=config.base_url, api_key=config.api_key)
            )
        except PlannerError as exc:
            fail(f"{path}: {exc}")
        for change in changes:
            err.print(escape_control(f"llm: {change}"), highlight=False, markup=False)
    return compile_guide(guide)


@tsg_app.command("compile")
def compile_command(
    guide: GuideArgument,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the workflow here (default: stdout).")
    ] = None,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="yaml: the workflow (default); plandag: StepFly's PlanDAG JSON with line provenance.",
        ),
    ] = "yaml",
    plan: PlanOption = None,
    llm: LLMOption = False,
    model: ModelOption = None,
) -> None:
    """Compile a guide into a workflow YAML file whose comments point back to the guide's lines."""
    if format_ not in ("yaml", "plandag"):
        fail(f"--format {format_!r}: use yaml or plandag", code=2)
    compiled = _compile(guide, _llm_config(llm, model), plan)
    text = compiled.to_yaml() if format_ == "yaml" else json.dumps(compiled.plandag(), indent=1) + "\n"
    try:
        compiled.workflow()
    except WorkflowFileError as exc:  # a compiler bug, not the user's: say so plainly
        print_problems(exc)
        fail(f"{guide}: the compiled workflow is invalid (please report this)")
    if output is None:
        print(text, end="")
    else:
        output.write_text(text, encoding="utf-8")
    err.print(_overview(compiled) + (f" → {output}" if output else ""), highlight=False, markup=False)


def _overview(compiled: CompiledGuide) -> str:
    kinds = [s.kind for s in compiled.steps]
    widest = max((len(w) for w in compiled.waves()), default=0)
    return (
        f"{compiled.guide.source}: {len(kinds)} steps ({kinds.count('command')} commands, "
        f"{kinds.count('judge')} conditions, {kinds.count('manual')} manual, {kinds.count('repeat')} loops), "
        f"{len(compiled.inputs)} inputs, {len(compiled.waves())} waves, up to {widest} in parallel"
    )


@tsg_app.command()
def lint(
    guide: GuideArgument,
    notes: Annotated[
        bool,
        typer.Option("--notes", help="Also show notes: rules too often wrong to report by default."),
    ] = False,
) -> None:
    """Report the guide's defects with line numbers; exit 1 if there are errors."""
    try:
        findings = lint_guide(load_guide(guide))
    except GuideError as exc:
        fail(str(exc))
    hidden = sum(f.severity == "note" for f in findings)
    if not notes:
        findings = [f for f in findings if f.severity != "note"]
    for finding in findings:
        style = {"error": "red", "warning": "yellow"}.get(finding.severity, "dim")
        out.print(escape_control(str(finding)), style=style, markup=False, highlight=False, soft_wrap=True)
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    summary = f"{guide}: {errors} error(s), {warnings} warning(s)"
    if hidden and not notes:
        summary += f" ({hidden} note(s): --notes)"
    if errors:
        fail(summary)
    err.print(summary, highlight=False, markup=False)


def _incident_values(path: Path | None) -> dict[str, str]:
    """Flatten an incident (or Alertmanager payload) into name → value, nested labels included."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"--incident {path}: {exc}")
    found: dict[str, str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(item, Mapping | list):
                    visit(item)
                else:
                    found.setdefault(str(key).lower(), "" if item is None else str(item))
        elif isinstance(value, list) and value:
            visit(value[0])  # the first alert of a group speaks for it

    visit(data)
    return found


def _overrides(compiled: CompiledGuide, sets: dict[str, str], incident: dict[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in compiled.inputs:
        if name.lower() in incident:
            values[name] = incident[name.lower()]
    values.update(sets)
    return values


def _fill(text: str, values: Mapping[str, Any]) -> str:
    return _INPUT_REFERENCE.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else f"<{m.group(1)}?>", text
    )


def _shown_command(args: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    if "argv" in args:
        argv = [str(a) for a in args["argv"]]
        if argv[:2] == ["sh", "-c"]:
            env = {k: _fill(str(v), values) for k, v in (args.get("set_env") or {}).items()}
            return "sh -c " + json.dumps(argv[2]) + "".join(f"  {k}={v}" for k, v in env.items())
        return " ".join(_fill(a, values) for a in argv)
    if "query" in args:
        return re.sub(r"\s+", " ", _fill(str(args["query"]), values))
    return ""


def _say(line: str) -> None:
    """Print a line of the plan: guide text and input values, control characters escaped."""
    print(escape_control(line))


def _dry_run(compiled: CompiledGuide, values: Mapping[str, Any]) -> None:
    waves = compiled.waves()
    _say(f"plan for {compiled.guide.source}: {len(compiled.steps)} steps in {len(waves)} waves")
    _say("(steps in one wave do not wait for each other: they run in parallel)")
    for number, wave in enumerate(waves, 1):
        _say(f"\nwave {number}:")
        for step in wave:
            flags = [step.tool]
            if step.needs_approval:
                flags.append("needs approval")
            _say(f"  - {step.id} [{', '.join(flags)}] guide line {step.line}")
            if step.kind == "command":
                _say(f"      $ {_shown_command(step.args, values)}")
            elif step.kind == "judge":
                test = step.args.get("test")
                how = f" (test: {test['op']} {test['value']!r})" if test else " (LLM judge or operator)"
                _say(f"      decide: {step.args['condition']}{how}")
            elif step.kind == "manual":
                shown = step.args.get("command") or step.args["instruction"]
                _say(f"      by hand: {_fill(str(shown), values)[:160]}")
            elif step.kind == "repeat":
                _say(f"      repeat up to {step.args['max_iterations']}x until: {step.args['until']}")
                for call in step.args["body"]:
                    _say(f"        $ {_shown_command(call['args'], values)}")
            if step.needs:
                _say(f"      after: {', '.join(step.needs)}" + (" (any)" if step.join == "any" else ""))
            if step.gates:
                _say(
                    "      only if: "
                    + " and ".join(f"{'not ' if negated else ''}{judge}" for judge, negated in step.gates)
                )
    missing = [name for name, spec in compiled.inputs.items() if name not in values and "default" not in spec]
    shown = {
        name: values.get(name, compiled.inputs[name].get("default", "<not set>")) for name in compiled.inputs
    }
    _say(f"\ninputs: {json.dumps(shown)}")
    if missing:
        _say("missing for a real run: " + " ".join(f"--set {name}=…" for name in missing))


def _registry(tools: list[str] | None, judge: ConditionJudge) -> ToolRegistry:
    """The tools plus the guide's own; they ask the operator through the run's prompter."""
    registry = registry_for(tools)
    for item in tsg_tools(judge, registry):
        registry.register(item, replace=True)
    return registry


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, BaseModel) else value


def _memory_table(compiled: CompiledGuide, result: RunResult) -> Table:
    """What each step found, in guide order: the run's memory, for the SRE."""
    table = Table(title="guide steps")
    for column in ("line", "step", "status", "result"):
        table.add_column(column, overflow="fold")
    for step in sorted(compiled.steps, key=lambda s: s.line):
        task = result.tasks.get(step.id)
        if task is None:
            continue
        output = _plain(task.output)
        if task.status is not TaskStatus.SUCCEEDED:
            shown = task.error.message if task.error else ""
        elif step.kind == "judge" and isinstance(output, Mapping):
            shown = f"{'yes' if output.get('holds') else 'no'} ({output.get('by')}: {output.get('reason')})"
        elif step.kind == "manual" and isinstance(output, Mapping):
            shown = "done by the operator" if output.get("performed") else "not done (no operator)"
        elif isinstance(output, Mapping) and "rows" in output:
            shown = json.dumps(output["rows"], default=str)[:100]
        elif isinstance(output, Mapping) and "stdout" in output:
            shown = (str(output["stdout"]).strip().splitlines() or [""])[-1]
            shown = escape_control(shown)[:100]
        else:
            shown = json.dumps(output, default=str)[:100]
        # Command output is the guide's least trusted text: shown literally, never as
        # markup or terminal controls (`[conceal]FAILED[/conceal]OK`, `\x1b]0;title\x07`).
        table.add_row(str(step.line), safe_text(step.id), task.status.value, safe_text(shown))
    return table


@tsg_app.command()
def run(
    guide: GuideArgument,
    set_: SetOption = None,
    incident: Annotated[
        Path | None,
        typer.Option("--incident", help="JSON incident or alert: its fields (and labels) fill inputs."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and every command; run nothing.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Approve mutating commands. Never decides a condition: one nobody can decide "
            "(no test, no --llm, no terminal) skips the steps it gates.",
        ),
    ] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
    tools: ToolsOption = None,
    plan: PlanOption = None,
    llm: LLMOption = False,
    model: ModelOption = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print the event stream as JSON Lines.")] = False,
    keep_going: Annotated[
        bool,
        typer.Option("--keep-going", help="On a failure, let the steps that do not depend on it finish."),
    ] = False,
    journal: JournalOption = None,
    no_journal: NoJournalOption = False,
    broker: BrokerOption = None,
    local_agents: LocalAgentsOption = 0,
    local_label: LocalLabelOption = None,
    device: DeviceOption = None,
    device_label: DeviceLabelOption = None,
    namespace: NamespaceOption = None,
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="With devices: run the commands on devices with this label, key=value."),
    ] = None,
) -> None:
    """Run a guide: parallel checks, approval before changes, a summary of what each step found.

    With ``--broker`` or ``--local-agents`` the guide's commands run on device agents
    (``--on key=value`` picks them by label); decisions, manual steps and loops stay here,
    at the operator's terminal.
    """
    config = _llm_config(llm, model)
    compiled = _compile(guide, config, plan)
    values = _overrides(compiled, parse_sets(set_), _incident_values(incident))
    refused = compiled.unsafe_values(values)  # --set and alert labels are untrusted text
    if refused:
        for message in refused:
            err.print(message, highlight=False, markup=False)
        fail(f"{guide}: {len(refused)} input value(s) refused (a value must not start with '-' there)")
    if dry_run:
        _dry_run(compiled, values)
        return
    llm_judge = None
    if config is not None:
        llm_judge = LLMJudge(model=config.model, base_url=config.base_url, api_key=config.api_key)
    view = None if json_lines else ProgressView(out)
    # One prompter for the run: the commands' approvals and the operator's questions
    # (conditions, manual steps) share its options and its one-at-a-time terminal.
    approver = make_approver(yes, view)
    registry = _registry(tools, ConditionJudge(llm=llm_judge))
    fleet = None
    if broker and not local_agents:  # the live devices' announced tools are the contract
        fleet = learn_fleet(broker, devices=device, device_labels=device_label, namespace=namespace)
        registry = with_fleet(registry, fleet)
    workflow = compiled.workflow()
    problems = workflow.problems(registry)
    if problems:
        print_problems(WorkflowFileError(problems))
        unknown = sorted(
            {p.message.split("'")[1] for p in problems if "unknown tool" in p.message and "'" in p.message}
        )
        hint = (
            f"; register a tool for {', '.join(unknown)} with --tools (e.g. @tool def promql(query: str))"
            if unknown
            else ""
        )
        fail(f"{guide}: cannot run ({len(problems)} problem(s)){hint}")
    try:
        inputs = workflow.resolve_inputs(values, from_strings=True)
        graph = workflow.to_graph()
    except WorkflowFileError as exc:
        print_problems(exc)
        fail(
            f"{guide}: {exc.problems[0].message if exc.problems else exc} (use --set NAME=value or --incident)"
        )
    if broker or local_agents:
        graph = _on_devices(graph, on)
        if fleet is not None:
            check_fleet(str(guide), graph.tasks.values(), registry, fleet, workflow.line_of)
    elif on:
        fail("--on picks devices: pass --broker URL or --local-agents N too", code=2)
    # Journaled like `stepweave run`; `stepweave resume RUN_ID --tools planners.tsg.workflow_tools`
    # continues it (tool modules are named again: resume never imports a path read from a journal).
    metadata = run_metadata(
        guide,
        ["planners.tsg.workflow_tools", *(tools or [])],
        keep_going=keep_going,
        max_concurrency=None,
        env=None,
    )
    ending = RunEnding(str(guide), json_lines, resume_tools=["planners.tsg.workflow_tools", *(tools or [])])

    async def execute() -> tuple[RunResult, list[Event], Any]:
        # Local agents offer the built-in tools (shell, sql, ...) and the --tools modules.
        agent_tools = ["tools.builtin", *(tools or [])]
        async with device_executor(
            broker,
            local_agents,
            agent_tools,
            local_label,
            devices=device,
            device_labels=device_label,
            namespace=namespace,
        ) as devices:
            orchestrator = Orchestrator(
                tools=registry,
                failure_policy="continue" if keep_going else "fail_fast",
                approver=approver,
                prompter=approver.prompter,
                executors={"device": devices} if devices is not None else None,
                journal=None if no_journal else journal_for(journal),
            )
            async with orchestrator.start(graph, inputs=inputs, metadata=metadata) as handle:
                ending.journaled(handle.run_id, orchestrator.journal)
                result, events = await watch(handle, view)
                return result, events, handle.graph

    result, events, final_graph = ending.execute(execute())
    ending.report(report, final_graph, result, events, compiled.guide.title)
    memory = {tid: _plain(t.output) for tid, t in result.tasks.items() if t.status is TaskStatus.SUCCEEDED}
    ending.summary(
        result,
        {"event": "guide_memory", "steps": memory},
        lambda: out.print(_memory_table(compiled, result)),
    )
    for line in _undecided(compiled, result):
        err.print(escape_control(line), highlight=False, markup=False)
    ending.finish(result, lambda result: _failure(guide, compiled, result))


def _undecided(compiled: CompiledGuide, result: RunResult) -> list[str]:
    """One line per condition nobody could decide, naming the steps it kept from running."""
    lines: list[str] = []
    for step in compiled.steps:
        task = result.tasks.get(step.id)
        output = _plain(task.output) if task is not None else None
        if step.kind != "judge" or not isinstance(output, Mapping) or output.get("by") != "undecided":
            continue
        gated = [s.id for s in compiled.steps if any(g == step.id and not neg for g, neg in s.gates)]
        gated += [
            s.id for s in compiled.steps if s.when_expr and f"steps.{step.id}.output.holds" in s.when_expr
        ]
        skipped = [
            g for g in dict.fromkeys(gated) if (t := result.tasks.get(g)) and t.status is TaskStatus.SKIPPED
        ]
        lines.append(
            f"{compiled.guide.source}:{step.line}: undecided: {output.get('condition')!r} "
            "(no test, no --llm, no terminal; --yes never decides a condition)"
            + (f": skipped {', '.join(skipped)}" if skipped else "")
        )
    return lines


#: Steps that stay on this machine when commands run on devices: they talk to the operator
#: (decisions, manual steps) or run their commands themselves (bounded loops).
_STAY_LOCAL = frozenset({"tsg_judge", "tsg_manual", "tsg_repeat", "approve"})


def _on_devices(graph: TaskGraph, on: list[str] | None) -> TaskGraph:
    """The graph with every command step targeted at devices (by label with ``--on``)."""
    try:
        target: Target = LabelsTarget(labels=parse_labels(on)) if on else "any-device"
    except ValueError as exc:
        fail(str(exc), code=2)
    tasks = [
        task if task.tool in _STAY_LOCAL else task.model_copy(update={"target": target})
        for task in graph.tasks.values()
    ]
    return TaskGraph(tasks, name=graph.name)


def _failure(guide: Path, compiled: CompiledGuide, result: RunResult) -> str:
    for task_id, task in result.tasks.items():
        if task.status is TaskStatus.FAILED and task.error is not None:
            line = next((s.line for s in compiled.steps if s.id == task_id), None)
            return f"{guide}:{line}: step {task_id!r} failed: {task.error.type}: {task.error.message}"
    return f"{guide}: run {result.status.value}: {result.error or 'unknown reason'}"
