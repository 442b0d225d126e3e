"""Runs beyond one machine: ``stepweave submit`` queues a run, ``stepweave worker`` runs them.

Both need a PostgreSQL journal (``--journal postgresql://user@host:port/db`` or
``$STEPWEAVE_JOURNAL``): the queue lives in it, and so does every run's history, which
``stepweave runs show RUN_ID --journal URL`` reads from any machine. See docs/scale.md.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated

import typer

from planners import WorkflowFileError

from ..errors import StepweaveError
from ..run import InflightPolicy
from .common import (
    FlowArgument,
    SetOption,
    ToolsOption,
    err,
    fail,
    load_flow,
    parse_sets,
    print_problems,
    registry_for,
)
from .devices import BrokerOption, device_executor
from .runs import JournalOption, journal_for, parse_age, run_metadata

__all__ = ["register"]

_NEEDS_POSTGRES = (
    "the run queue needs a PostgreSQL journal (--journal postgresql://user@host:port/db or "
    "$STEPWEAVE_JOURNAL); a SQLite journal serves one machine: use `stepweave run`"
)


def register(app: typer.Typer) -> None:
    app.command()(submit)
    app.command()(worker)


def submit(
    flow: FlowArgument,
    journal: JournalOption = None,
    set_: SetOption = None,
    tools: ToolsOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help='Print {"run_id": ...} (and the status with --wait).')
    ] = False,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait until a worker has finished the run; exit 1 unless it succeeded."),
    ] = False,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="On a failure, let independent steps finish.")
    ] = False,
    max_concurrency: Annotated[
        int | None, typer.Option("--max-concurrency", min=1, help="Most steps running at once.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option("--env", help="Environment variable expressions may read as env.NAME (repeatable)."),
    ] = None,
) -> None:
    """Queue a workflow run for `stepweave worker` and print its id.

    The run is journaled at once with its graph and inputs (--set); any worker on the same
    journal takes it. --tools only checks the workflow here: workers import their own.
    """
    store = journal_for(journal)
    registry = registry_for(tools)
    workflow = load_flow(flow, registry)
    try:
        inputs = workflow.resolve_inputs(parse_sets(set_), from_strings=True)
        graph = workflow.to_graph()
    except WorkflowFileError as exc:
        print_problems(exc)
        fail(f"{flow}: {exc.problems[0].message if exc.problems else exc}")
    metadata = run_metadata(flow, tools, keep_going=keep_going, max_concurrency=max_concurrency, env=env)
    if store.postgres is None:
        fail(f"{store.where}: {_NEEDS_POSTGRES}", code=2)
    try:
        run_id = store.submit(graph, inputs=inputs, metadata=metadata)
    except StepweaveError as exc:
        fail(str(exc))
    if not wait:
        print(json.dumps({"run_id": run_id}) if json_out else run_id, flush=True)
        return
    if not json_out:
        err.print(
            f"run {run_id} queued in {store.where}; waiting for a worker", highlight=False, markup=False
        )

    async def until_ended() -> str:
        async with store.queue(owner="", lease=30) as queue:
            return await queue.wait_ended(run_id)

    try:
        status = asyncio.run(until_ended())
    except StepweaveError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"stopped waiting; run {run_id} stays queued (see `stepweave runs show {run_id}`)", code=130)
    print(json.dumps({"run_id": run_id, "status": status}) if json_out else f"{run_id} {status}", flush=True)
    if status != "succeeded":
        fail(f"run {run_id} {status} (see `stepweave runs show {run_id}`)")


def worker(
    journal: JournalOption = None,
    tools: ToolsOption = None,
    broker: BrokerOption = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Runs this worker runs at once.")
    ] = 1,
    lease: Annotated[
        str, typer.Option("--lease", help="How long a claimed run stays ours without a renewal (30s, 2m).")
    ] = "30s",
    grace: Annotated[
        str,
        typer.Option(
            "--grace", help="On SIGTERM, how long running runs may finish before they are handed back."
        ),
    ] = "10s",
    retry_inflight: Annotated[
        str,
        typer.Option(
            "--retry-inflight",
            help="A non-idempotent step that was running when a run's previous worker died: fail (default) or retry.",
        ),
    ] = "fail",
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve every approval gate (else they are refused).")
    ] = False,
) -> None:
    """Run queued runs from a PostgreSQL journal until stopped (SIGTERM: finish or hand back).

    Claims runs with FOR UPDATE SKIP LOCKED, keeps a lease on each while it works, and
    takes over runs whose lease expired (their worker died) with the rules of `resume`.
    Only the --tools named here are imported, never module paths stored in the journal.
    """
    if retry_inflight not in ("retry", "fail"):
        fail(f"--retry-inflight must be retry or fail, not {retry_inflight!r}", code=2)
    policy: InflightPolicy = "retry" if retry_inflight == "retry" else "fail"
    try:
        lease_s, grace_s = parse_age(lease), parse_age(grace)
    except ValueError as exc:
        fail(str(exc), code=2)
    if lease_s <= 0:
        fail("--lease must be longer than 0s", code=2)
    store = journal_for(journal)
    if store.postgres is None:
        fail(f"{store.where}: {_NEEDS_POSTGRES}", code=2)
    registry = registry_for(tools)
    from .worker import Worker

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with device_executor(broker, 0, tools or [], None) as devices:
            await Worker(
                store,
                registry,
                concurrency=concurrency,
                lease=lease_s,
                grace=grace_s,
                retry_inflight=policy,
                yes=yes,
                executors={"device": devices} if devices is not None else None,
            ).serve(stop)

    try:
        store.check()
        asyncio.run(serve())
    except StepweaveError as exc:
        fail(str(exc))
