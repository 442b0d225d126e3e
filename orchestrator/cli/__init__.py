"""The ``stepweave`` command line: the one composition root of engine, planners and tools.

Each module registers one family of commands on a Typer app (``register(app)``):

- ``running``: run (a workflow, with devices, the journal and a report)
- ``workflows``: validate, graph, schema, tools
- ``planner``: ask (an LLM plans a request; the plan runs as it streams)
- ``devices``: agent, broker (``run --broker/--local-agents`` reach the devices)
- ``tsg``: tsg compile, tsg lint, tsg run (Markdown troubleshooting guides)
- ``runs``: resume, runs list|show|prune, report (the run journal)
- ``queue``: submit, worker (a run queue in a PostgreSQL journal, for many machines)
- ``mcp``: mcp serve (workflows and ``ask`` as tools of a Model Context Protocol server)

Start-up time is a feature (``stepweave --help`` should cost little more than starting
Python), so a module is imported only when one of its commands is used: ``COMMANDS``
names each command's module and the one line ``stepweave --help`` shows for it. A new
family adds one line per command to ``COMMANDS`` (a module registered eagerly with
``module.register(app)`` works too, at the price of its imports on every command).

Exit codes: 0 success, 1 failure (a failed run or invalid input, with a one-line reason
on stderr), 2 bad usage.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..telemetry.sdk import configure_from_env
from . import startup
from .lazy import LazyCommand, LazyGroup

__all__ = ["COMMANDS", "app", "main"]

COMMANDS: dict[str, LazyCommand] = {
    "run": LazyCommand(
        "running", "Run a workflow: live progress, a summary, exit code 0 on success and 1 on failure."
    ),
    "validate": LazyCommand(
        "workflows", "Check a workflow without running it; print every problem, not just the first."
    ),
    "graph": LazyCommand(
        "workflows", "Print the workflow's dependency graph (Mermaid, Graphviz DOT or JSON)."
    ),
    "schema": LazyCommand("workflows", "Print the JSON Schema of workflow files (for editor completion)."),
    "tools": LazyCommand("workflows", "List the available tools with their argument schemas."),
    "ask": LazyCommand(
        "planner", "Plan a request with an LLM, run the plan while it streams, and print the answer."
    ),
    "agent": LazyCommand("devices", "Serve tools to orchestrators as a device agent until interrupted."),
    "broker": LazyCommand(
        "devices",
        "Run an MQTT broker in the foreground: Mosquitto when installed, else the development amqtt.",
    ),
    "devices": LazyCommand(
        "fleet",
        "List the live fleet on a broker: id, labels, tools, load, in-flight tasks, last heartbeat, protocol.",
    ),
    "resume": LazyCommand("runs", "Continue a run that crashed, failed or was cancelled, from its journal."),
    "report": LazyCommand(
        "runs", "Write the HTML report of a journaled run (a past run, or one that crashed)."
    ),
    "tsg": LazyCommand(
        "tsg", "Troubleshooting guides: compile Markdown runbooks into workflows, lint them, run them safely."
    ),
    "runs": LazyCommand("runs", "The history of journaled runs: list, show, prune."),
    "submit": LazyCommand("queue", "Queue a workflow run for `stepweave worker` and print its id."),
    "worker": LazyCommand(
        "queue", "Run queued runs from a PostgreSQL journal until stopped (SIGTERM: finish or hand back)."
    ),
    "mcp": LazyCommand("mcp", "Model Context Protocol: serve workflows (and ask) as tools to MCP clients."),
}


class _Commands(LazyGroup):
    lazy = COMMANDS
    package = __name__


app = typer.Typer(
    name="stepweave",
    help="Run dependency graphs of steps in parallel: YAML workflows, tools, reports.",
    cls=_Commands,
    no_args_is_help=True,
    # `stepweave --install-completion` / `--show-completion` (bash, zsh, fish, PowerShell).
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    # Docstrings are Markdown: paragraphs reflow, `code` is shown as code.
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # only when asked: it costs ~10 ms

        print(f"stepweave {version('stepweave')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run dependency graphs of steps in parallel: YAML workflows, tools, reports."""


def main() -> None:
    """Console-script entry point."""
    with startup.paused():  # until the command's own code starts: see .startup
        configure_from_env()  # OpenTelemetry from OTEL_* variables; imports nothing when unset
        app()
