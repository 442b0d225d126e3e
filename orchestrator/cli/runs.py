"""Run history and recovery: ``resume``, ``runs list|show|prune``, ``report``.

They all read the journal that ``stepweave run`` writes (``--journal PATH``, else
``$STEPWEAVE_JOURNAL``, else ``journal.sqlite3`` in the user's data directory).
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from planners import WorkflowFileError, load_workflow
from tools import Prompter

from ..console import ProgressView, summary_table
from ..errors import StepweaveError
from ..events import Event
from ..graph import Task, TaskGraph
from ..journal import Journal, RunHistory, RunRecord
from ..result import RunResult
from ..run import InflightPolicy, Orchestrator
from ..terminal_text import escape_control, safe_text
from .common import ToolsOption, err, fail, make_approver, out, registry_for, watch
from .devices import BrokerOption, device_executor
from .ending import RunEnding

__all__ = ["JournalOption", "NoJournalOption", "journal_for", "register", "run_metadata"]

JournalOption = Annotated[
    str | None,
    typer.Option(
        "--journal",
        help="The run journal: a file, sqlite:///FILE or postgresql://user@host:port/db "
        "(default: $STEPWEAVE_JOURNAL, else journal.sqlite3 in the user data directory).",
        show_default=False,
    ),
]
NoJournalOption = Annotated[
    bool, typer.Option("--no-journal", help="Do not journal this run (it cannot be resumed).")
]
RunIdArgument = Annotated[
    str, typer.Argument(help="The run id (see `stepweave runs list`).", show_default=False)
]

runs_app = typer.Typer(
    name="runs",
    help="The history of journaled runs: list, show, prune.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.command()(resume)
    app.command()(report)
    app.add_typer(runs_app)
    runs_app.command("list")(list_runs)
    runs_app.command("show")(show)
    runs_app.command("prune")(prune)


def journal_for(location: str | Path | None) -> Journal:
    """The journal at ``location`` (a path or a URL), or the default one (exit 2 if malformed)."""
    try:
        return Journal(location)
    except (ValueError, ImportError) as exc:
        fail(f"--journal: {exc}", code=2)


def run_metadata(
    flow: Path,
    tools: list[str] | None,
    *,
    keep_going: bool,
    max_concurrency: int | None,
    env: list[str] | None,
) -> dict[str, Any]:
    """What ``stepweave run`` stores with a run so that ``resume`` needs only its id.

    Paths are made absolute: a resume may start in another directory. The broker URL is
    left out on purpose (it may carry credentials).
    """
    return {
        "workflow": str(flow.resolve()),
        "tools": [str(Path(spec).resolve()) if Path(spec).exists() else spec for spec in tools or ()],
        "keep_going": keep_going,
        "max_concurrency": max_concurrency,
        "env": list(env or ()),
    }


def _load(journal: Journal, run_id: str) -> RunHistory:
    try:
        return journal.load(run_id)
    except StepweaveError as exc:
        fail(str(exc))


# -- resume ------------------------------------------------------------------------------


def resume(
    run_id: RunIdArgument,
    journal: JournalOption = None,
    tools: ToolsOption = None,
    retry_inflight: Annotated[
        str,
        typer.Option(
            "--retry-inflight",
            help="A step that was running when the run stopped and is not idempotent: "
            "ask (in a terminal; elsewhere fail), retry, or fail.",
        ),
    ] = "ask",
    json_lines: Annotated[bool, typer.Option("--json", help="Print the event stream as JSON Lines.")] = False,
    report_path: Annotated[Path | None, typer.Option("--report", help="Write an HTML report here.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every approval gate.")] = False,
    broker: BrokerOption = None,
) -> None:
    """Continue a run that crashed, failed or was cancelled, from its journal.

    Steps that succeeded keep their outputs and do not run again; failed and cancelled
    steps run again; steps that were running are dispatched again with the same
    idempotency key, or handled by --retry-inflight if they are not idempotent.
    """
    if retry_inflight not in ("ask", "retry", "fail"):
        fail(f"--retry-inflight must be ask, retry or fail, not {retry_inflight!r}", code=2)
    store = journal_for(journal)
    history = _load(store, run_id)
    meta = history.record.meta
    modules = _resume_tools(run_id, meta, tools)
    registry = registry_for(modules)
    view = None if json_lines else ProgressView(out)
    approver = make_approver(yes, view)
    policy = _inflight_policy(retry_inflight, approver.prompter)
    # Continued again with the tools named again: resume never imports a journal's paths.
    ending = RunEnding(f"run {run_id}", json_lines, resume_tools=tools or ())

    async def execute() -> tuple[RunResult, list[Event], TaskGraph]:
        # The broker URL is not journaled (it may carry credentials): --broker or
        # $STEPWEAVE_BROKER again, if the run has steps on devices.
        async with device_executor(broker, 0, modules or [], None) as devices:
            orchestrator = Orchestrator(
                tools=registry,
                journal=store,
                max_concurrency=meta.get("max_concurrency"),
                failure_policy="continue" if meta.get("keep_going") else "fail_fast",
                approver=approver,
                prompter=approver.prompter,
                executors={"device": devices} if devices is not None else None,
                env=meta.get("env") or (),
            )
            handle = orchestrator.resume(run_id, retry_inflight=policy)
            _announce(history, json_lines)
            ending.journaled(run_id, store, announce=False)  # the same run, in the same journal
            async with handle:
                result, events = await watch(handle, view)
                return result, events, handle.graph

    try:
        result, events, final_graph = ending.execute(execute())
    except StepweaveError as exc:  # the run cannot be resumed (it says why)
        fail(str(exc))
    outputs = _workflow_outputs(meta, result)
    ending.report(report_path, final_graph, result, events, history.record.name)

    def show_outputs() -> None:
        if outputs:
            out.print_json(json.dumps(outputs, default=str))

    ending.summary(result, {"event": "workflow_outputs", "outputs": outputs}, show_outputs)
    ending.finish(result, lambda result: _failure_reason(run_id, result))


def _failure_reason(run_id: str, result: RunResult) -> str:
    failed = next(
        (t for t in result.tasks.values() if t.error is not None and t.status.value == "failed"), None
    )
    reason = f"step {failed.id!r} failed: {failed.error}" if failed else (result.error or "unknown reason")
    return f"run {run_id} {result.status.value}: {reason}"


def _resume_tools(run_id: str, meta: Mapping[str, Any], tools: list[str] | None) -> list[str]:
    """The ``--tools`` modules to import: only ever the ones named on this command line.

    The journal records which modules the run was started with, but importing a path read
    from a file would let whoever can write that file run code as this user: it is only
    used to say what to pass.
    """
    recorded = meta.get("tools")
    if tools:
        return tools
    if isinstance(recorded, list) and recorded:
        shown = " ".join(f"--tools {shlex.quote(str(spec))}" for spec in recorded)
        fail(
            f"run {run_id} was started with tool modules that resume does not import on its own "
            f"(code paths are not taken from the journal): pass them again, e.g. "
            f"`stepweave resume {shlex.quote(run_id)} {shown}`",
            code=2,
        )
    return []


def _inflight_policy(choice: str, prompter: Prompter) -> InflightPolicy:
    if choice != "ask":
        return "retry" if choice == "retry" else "fail"

    async def ask(task: Task) -> bool:
        # A question about the world (did it do its work?), not an approval: --yes does not answer it.
        question = Text.assemble(
            "Step ",
            (escape_control(task.id, multiline=False), "bold"),
            f" ({escape_control(task.tool, multiline=False)}) was running when the run stopped and is not "
            "idempotent: it may have done its work already. Run it again?",
        )
        answer = await prompter.ask(question, step=task.id)
        if answer is None:
            err.print(
                escape_control(
                    f"step {task.id!r} ({task.tool}) was running when the run stopped and is not "
                    "idempotent; not repeating it (use --retry-inflight retry to run it again)"
                ),
                highlight=False,
                markup=False,
            )
            return False
        return answer

    return ask


def _announce(history: RunHistory, json_lines: bool) -> None:
    """Say what the resume will keep and what was in flight, before anything runs."""
    kept = sum(r.status.value in ("succeeded", "skipped") for r in history.results.values())
    inflight = history.in_flight()
    line = f"resuming run {history.record.run_id} ({history.record.name or 'unnamed'}): {kept} step(s) kept"
    if inflight:
        line += f"; in flight when it stopped: {', '.join(inflight)}"
    if not json_lines:
        err.print(escape_control(line), highlight=False, markup=False)


def _workflow_outputs(meta: Mapping[str, Any], result: RunResult) -> dict[str, Any]:
    """The workflow's ``outputs``, when the run came from a workflow file that still exists."""
    workflow_file = meta.get("workflow")
    if not result.ok or not workflow_file or not Path(workflow_file).is_file():
        return {}
    try:
        workflow = load_workflow(workflow_file)
        return workflow.evaluate_outputs(result, meta.get("inputs") or {})
    except WorkflowFileError as exc:
        err.print(
            escape_control(f"{workflow_file}: outputs not evaluated: {exc}"), highlight=False, markup=False
        )
        return {}


# -- history -----------------------------------------------------------------------------


def list_runs(
    journal: JournalOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many runs.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List journaled runs, newest first: id, name, status, start, duration, steps done."""
    store = journal_for(journal)
    if not store.exists():
        fail(f"{store.where}: no journal yet (runs are journaled by `stepweave run`)")
    try:
        records = store.runs(limit=limit)
    except StepweaveError as exc:
        fail(str(exc))
    if json_out:
        for record in records:
            print(json.dumps(_record_dict(record)))
        return
    table = Table(title=safe_text(f"runs in {store.where}"))
    # An id is copied and pasted: never wrapped or cut, whatever the terminal's width.
    widest = max((len(record.run_id) for record in records), default=6)
    table.add_column("run id", no_wrap=True, min_width=widest)
    for column in ("name", "status", "started", "duration", "steps done"):
        table.add_column(column, overflow="fold")
    for record in records:
        duration = f"{record.duration:.1f}s" if record.duration is not None else "-"
        table.add_row(
            safe_text(record.run_id),
            safe_text(record.name or "-"),
            safe_text(record.status),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at)),
            duration,
            f"{record.tasks_done}/{record.tasks_total}",
        )
    out.print(table)


def _record_dict(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "name": record.name,
        "status": record.status,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "tasks_done": record.tasks_done,
        "tasks_total": record.tasks_total,
        "error": record.error,
    }


def show(
    run_id: RunIdArgument,
    journal: JournalOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="The run's result as JSON.")] = False,
) -> None:
    """Show one run: its steps with status, attempts, timing, and outputs or errors."""
    history = _load(journal_for(journal), run_id)
    result = history.result()
    if json_out:
        print(json.dumps({**_record_dict(history.record), "result": result.to_dict()}, default=str))
        return
    record = history.record
    shown = f"run {record.run_id} ({record.name or 'unnamed'}): {record.status}"
    out.print(escape_control(shown), highlight=False, markup=False)
    if record.error:
        out.print(escape_control(f"error: {record.error}"), highlight=False, markup=False)
    inflight = history.in_flight()
    if inflight:
        out.print(
            escape_control(
                f"in flight when it stopped: {', '.join(inflight)} (`stepweave resume {record.run_id}`)"
            ),
            highlight=False,
            markup=False,
        )
    out.print(summary_table(result))


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as seconds (``ValueError`` otherwise)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m, 45s or 2w")
    return float(match.group(1)) * _UNIT[match.group(2)]


def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age like 30d, 12h, 2w.")] = "30d",
    journal: JournalOption = None,
) -> None:
    """Delete runs that started longer ago than --older-than (live runs are kept)."""
    try:
        seconds = parse_age(older_than)
    except ValueError as exc:
        fail(f"--older-than: {exc}", code=2)
    store = journal_for(journal)
    if not store.exists():
        fail(f"{store.where}: no journal yet (runs are journaled by `stepweave run`)")
    try:
        deleted = store.prune(older_than=seconds)
    except StepweaveError as exc:
        fail(str(exc))
    out.print(
        escape_control(f"pruned {len(deleted)} run(s) older than {older_than} from {store.where}"),
        highlight=False,
        markup=False,
    )


def report(
    run_id: RunIdArgument,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the HTML report.")] = Path(
        "run.html"
    ),
    journal: JournalOption = None,
) -> None:
    """Write the HTML report of a journaled run (a past run, or one that crashed)."""
    from ..report import write_html

    history = _load(journal_for(journal), run_id)
    graph = TaskGraph([*history.graph, *history.items.values()], name=history.graph.name)
    path = write_html(output, graph, history.result(), history.events, title=history.record.name or run_id)
    out.print(escape_control(f"report: {path}"), highlight=False, markup=False)
