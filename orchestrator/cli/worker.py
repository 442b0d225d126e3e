"""The worker loop behind ``stepweave worker``: claim queued runs, keep their leases, run them.

Every run, fresh or taken over from a worker that died, goes through
``Orchestrator.resume``: steps that succeeded keep their outputs, steps that were in
flight run again with the same idempotency key when idempotent, and the others follow
``--retry-inflight`` (``fail`` by default: nobody is at a terminal to ask).

Stopping (SIGTERM or SIGINT): claim nothing more, give running runs ``grace`` seconds to
finish, then cancel the rest and hand them back to the queue for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tools import ToolRegistry

from ..errors import GraphValidationError, ResumeError, StepweaveError
from ..executors import Executor
from ..journal import Journal
from ..journal.backend import owner_id
from ..journal.queue import RunQueue
from ..run import InflightPolicy, Orchestrator, Run
from ..terminal_text import escape_control
from .common import make_approver

__all__ = ["Worker"]


@dataclass
class Worker:
    """One worker process: ``await Worker(...).serve(stop)`` until ``stop`` is set."""

    journal: Journal
    tools: ToolRegistry
    concurrency: int = 1
    lease: float = 30.0
    grace: float = 10.0
    retry_inflight: InflightPolicy = "fail"
    yes: bool = False
    executors: Mapping[str, Executor] | None = None
    owner: str = field(default_factory=owner_id)
    _runs: dict[str, Run] = field(default_factory=dict)

    def log(self, message: str) -> None:
        # Plain lines on stderr (a worker runs under a service manager), with control
        # characters escaped: run names and errors are data, and may reach a terminal.
        print(escape_control(f"worker {self.owner}: {message}", multiline=False), file=sys.stderr, flush=True)

    async def serve(self, stop: asyncio.Event) -> None:
        async with self.journal.queue(owner=self.owner, lease=self.lease) as queue:
            self.log(f"serving {self.journal.where} (concurrency {self.concurrency}, lease {self.lease:g}s)")
            slots = asyncio.Semaphore(self.concurrency)
            tasks: set[asyncio.Task[None]] = set()
            keeper = asyncio.create_task(self._keep_leases(queue), name="stepweave-worker-leases")
            try:
                await self._claim_loop(queue, slots, tasks, stop)
                await self._drain(queue, tasks)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        self.log("stopped")

    async def _claim_loop(
        self, queue: RunQueue, slots: asyncio.Semaphore, tasks: set[asyncio.Task[None]], stop: asyncio.Event
    ) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                acquire = asyncio.create_task(slots.acquire())
                await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not acquire.done():
                    acquire.cancel()
                    break
                if stop.is_set():
                    slots.release()
                    break
                run_id = await queue.claim()
                if run_id is None:
                    slots.release()
                    # Woken by a submit or a run's end; leases expire unannounced, so look
                    # again within half a lease.
                    news = asyncio.create_task(queue.wait_for_news(self.lease / 2))
                    await asyncio.wait({news, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    news.cancel()
                    continue
                task = asyncio.create_task(
                    self._execute(queue, run_id, slots), name=f"stepweave-worker-{run_id}"
                )
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            stopping.cancel()

    async def _drain(self, queue: RunQueue, tasks: set[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        self.log(f"stopping: {len(tasks)} run(s) get {self.grace:g}s to finish")
        _, pending = await asyncio.wait(set(tasks), timeout=self.grace)
        if not pending:
            return
        stopped = list(self._runs)
        for run in self._runs.values():
            run.cancel("the worker is stopping; handed back to the queue")
        await asyncio.wait(pending)
        for run_id in stopped:
            if await queue.hand_back(run_id):
                self.log(f"run {run_id}: handed back to the queue")

    async def _keep_leases(self, queue: RunQueue) -> None:
        """Renew the leases every third of a lease; cancel a run whose lease was lost."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease / 3)  # a timer: the lease is time itself
            mine = list(self._runs)
            try:
                kept = await queue.renew(mine)
                renewed = time.monotonic()
            except StepweaveError as exc:
                if time.monotonic() - renewed < self.lease:
                    continue  # the database is away; commits wait for it too
                self.log(f"cannot renew leases: {exc}")
                kept = set()
            for run_id in set(mine) - kept:
                run = self._runs.get(run_id)
                if run is not None:
                    self.log(f"run {run_id}: lease lost (another worker may have it); stopping it here")
                    run.cancel("this worker lost the run's lease")

    async def _execute(self, queue: RunQueue, run_id: str, slots: asyncio.Semaphore) -> None:
        try:
            await self._run_one(queue, run_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one bad run must not stop the worker
            self.log(f"run {run_id}: {type(exc).__name__}: {exc}")
        finally:
            self._runs.pop(run_id, None)
            slots.release()

    async def _run_one(self, queue: RunQueue, run_id: str) -> None:
        journal = self.journal
        try:
            history = await asyncio.to_thread(journal.load, run_id)
            meta = history.record.meta
            approver = make_approver(self.yes, None)
            orchestrator = Orchestrator(
                tools=self.tools,
                journal=journal,
                max_concurrency=meta.get("max_concurrency"),
                failure_policy="continue" if meta.get("keep_going") else "fail_fast",
                approver=approver,
                prompter=approver.prompter,
                executors=self.executors,
                env=meta.get("env") or (),
            )
            handle = orchestrator.resume(run_id, retry_inflight=self.retry_inflight)
        except ResumeError as exc:
            self.log(f"run {run_id}: not resumable here: {exc}")
            return
        except GraphValidationError as exc:
            # This worker lacks a tool the run needs: say so in the run, for every worker.
            self.log(f"run {run_id}: cannot run here: {exc}")
            await queue.give_up(run_id, f"worker {self.owner} cannot run it: {exc}")
            return
        kept = sum(r.ok for r in history.results.values())
        self.log(f"run {run_id} ({history.record.name or 'unnamed'}): claimed, {kept} step(s) already done")
        self._runs[run_id] = handle
        # One orchestrator per run in a long-lived process: close its tool threads after.
        async with orchestrator, handle:
            result = await handle.wait()
        self.log(f"run {run_id}: {result.status.value}" + (f" ({result.error})" if result.error else ""))
