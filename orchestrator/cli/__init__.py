"""The ``stepweave`` command line: the one composition root of engine, planners and tools.

Each module registers one family of commands on the shared Typer app:

- ``workflows``: run, validate, graph, schema, tools
- ``planner``: ask (an LLM plans a request; the plan runs as it streams)
- ``devices``: agent, broker (``run --broker/--local-agents`` reach the devices)
- ``tsg``: tsg compile, tsg lint, tsg run (Markdown troubleshooting guides)
- ``runs``: resume, runs list|show|prune, report (the run journal)
- ``queue``: submit, worker (a run queue in a PostgreSQL journal, for many machines)

Exit codes: 0 success, 1 failure (a failed run or invalid input, with a one-line reason
on stderr), 2 bad usage.
"""

from __future__ import annotations

import typer

from . import devices, planner, queue, runs, tsg, workflows

__all__ = ["app", "main"]

app = typer.Typer(
    name="stepweave",
    help="Run dependency graphs of steps in parallel: YAML workflows, tools, reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workflows.register(app)
planner.register(app)
devices.register(app)
tsg.register(app)
runs.register(app)
queue.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
