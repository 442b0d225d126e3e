"""What every ``stepweave`` command shares: consoles, failing with an exit code, loading
tools and workflows, approval prompts, and running a graph with live progress.

Exit codes: 0 success, 1 failure (a failed run or invalid input, with a one-line reason
on stderr), 2 bad usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ..terminal_text import escape_for_terminal

# Imported where used: every command imports this module, and `stepweave --help` or
# `validate` must not pay for the engine, the workflow model, the built-in tools or Rich.
if TYPE_CHECKING:
    from rich.console import Console

    from planners import Workflow, WorkflowFileError
    from tools import ToolRegistry

    from ..console import ProgressView
    from ..events import Event
    from ..result import RunResult
    from ..run import Run
    from .approval import Approval, ApprovalPolicy

__all__ = [
    "FlowArgument",
    "SetOption",
    "ToolsOption",
    "err",
    "fail",
    "load_flow",
    "make_approver",
    "out",
    "parse_sets",
    "print_problems",
    "registry_for",
    "watch",
]

#: The consoles of stdout and stderr, made on first use (module ``__getattr__``): importing
#: Rich costs ~15 ms, which a ``validate`` that succeeds into a pipe never needs.
if TYPE_CHECKING:
    out: Console
    err: Console


def __getattr__(name: str) -> Console:
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def _console(name: str) -> Console:
    """``out`` or ``err``, made now if it is the first use (this module's own code must call
    this: a module's global names are not looked up through its ``__getattr__``)."""
    console: Console | None = globals().get(name)
    if console is None:
        from rich.console import Console

        console = Console(stderr=name == "err")
        globals()[name] = console  # later lookups find the attribute and skip the hook
    return console


ToolsOption = Annotated[
    list[str] | None,
    typer.Option("--tools", help="Module (name or .py path) whose @tool functions become available."),
]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Input value: name=value (repeatable).")]
FlowArgument = Annotated[Path, typer.Argument(help="The workflow YAML file.", show_default=False)]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line reason on stderr and exit with ``code``.

    ``message`` is shown literally: it often quotes data (an error from a tool, a path
    from a journal), which must not be read as Rich markup or terminal controls.
    """
    _console("err").print(
        f"[bold red]error:[/] {escape_for_terminal(message)}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def registry_for(modules: list[str] | None) -> ToolRegistry:
    """Built-in tools plus every ``@tool`` in the user's modules (exit 1 naming a bad one)."""
    from tools.builtin import builtin_registry
    from tools.loading import load_tools

    try:
        return load_tools(modules or (), into=builtin_registry())
    except ValueError as exc:
        fail(str(exc))


def load_flow(flow: Path, registry: ToolRegistry) -> Workflow:
    """Load and check a workflow file; print every problem and exit 1 if it is invalid."""
    from planners import WorkflowFileError, load_workflow

    try:
        workflow = load_workflow(flow)
    except WorkflowFileError as exc:
        print_problems(exc)
        fail(f"{flow}: invalid workflow ({len(exc.problems)} problem(s))")
    problems = workflow.problems(registry)
    if problems:
        print_problems(WorkflowFileError(problems))
        fail(f"{flow}: invalid workflow ({len(problems)} problem(s))")
    return workflow


def print_problems(error: WorkflowFileError) -> None:
    """Every problem of ``error`` on stderr, one per line, shown literally."""
    for problem in error.problems:
        _console("err").print(str(problem), highlight=False, soft_wrap=True, markup=False)


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """``--set name=value`` options as a mapping (exit 2 on a malformed one)."""
    result: dict[str, str] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"--set {item!r}: expected name=value", code=2)
        result[name.strip()] = value
    return result


def make_approver(yes: bool, view: ProgressView | None, policy: ApprovalPolicy | None = None) -> Approval:
    """An approver: ``--yes`` approves all; a terminal asks; anything else refuses.

    ``policy`` widens or narrows that (``ask``: ``--allow TOOL``, read-only calls,
    ``--allow-env``); see ``orchestrator.cli.approval``.
    """
    from .approval import Approval, ApprovalPolicy

    return Approval(policy or ApprovalPolicy(yes=yes), _console("err"), view)


async def watch(run: Run, view: ProgressView | None) -> tuple[RunResult, list[Event]]:
    """Follow a started run to its end: live progress in a terminal, else JSON Lines on
    stdout when ``view`` is None. Returns the result and every event."""
    from ..console import event_json

    events: list[Event] = []
    if view is not None and _console("out").is_terminal:
        with view.live():
            async for event in run.events():
                view.update(event)
                events.append(event)
    else:
        async for event in run.events():
            events.append(event)
            if view is not None:
                view.update(event)
            else:
                print(event_json(event), flush=True)
    return await run.wait(), events
