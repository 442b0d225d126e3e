"""Writing one run to the journal: group commit on a writer thread.

The event loop never touches the database. ``record`` appends the event to a list and, once per
loop iteration, hands the list to a writer thread; the thread takes every batch waiting
for it and commits them in ONE transaction (group commit), so a layer of a thousand tasks
that end together costs one commit, not a thousand. ``hold`` parks something (the
scheduler parks a succeeded task before releasing its dependents) until the transaction
holding everything recorded so far is durable; the thread then hands it back on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..errors import JournalError, StepweaveError
from ..events import Event, RunStarted, TaskProgress, TaskReady
from ..graph import TaskGraph, TaskStatus
from .backend import ACTIVE, Backend, RunEnd, RunStart, RunWriter, owner_id
from .codec import dumps, encode_batch, encode_graph

__all__ = ["ACTIVE", "RunRecorder", "owner_id"]


class _Stop:
    """Last item for the writer: commit what is queued, close the file, then say so."""

    def __init__(self) -> None:
        self.closed: concurrent.futures.Future[None] = concurrent.futures.Future()


#: The most frequent kinds, which a resume does not need; and the start, which ``open``
#: already wrote (with the graph) when it registered the run.
_UNKEPT = frozenset({TaskReady, TaskProgress, RunStarted})
_DONE_STATES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.SKIPPED})
Release = Callable[[list[Any]], None]
Failed = Callable[[BaseException], None]


class RunRecorder:
    """Records the events of one run (new or resumed) into a journal ``backend``."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        *,
        graph: TaskGraph | None = None,
        meta: Mapping[str, Any] | None = None,
        resume_from_owner: str | None = None,
        resuming: bool = False,
        echoes: Collection[str] = (),
    ) -> None:
        self._backend = backend
        self.run_id = run_id
        self._graph = graph
        self._meta = dict(meta or {})
        self._resuming = resuming
        self._previous_owner = resume_from_owner
        # Tasks restored from the journal: their TaskEnded in this run only repeats it.
        self._echoes = frozenset(echoes)
        self._writer: RunWriter | None = None
        self._seq = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: list[Event] = []
        self._held: list[Any] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._release: Release = _ignore
        self._failed: Failed = _ignore
        self._failure: BaseException | None = None

    # -- set-up ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer thread, which opens the journal and registers the run.

        Raises what ``open`` raises (a bad journal fails the run before any step runs).
        """
        opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(opened,), name=f"stepweave-journal-{self.run_id}", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(opened)
        except BaseException:
            self._queue.put(_Stop())  # cancelled while opening: the thread ends once open
            self._thread = None
            raise

    def open(self) -> None:
        """Connect and register the run (or claim it back, when resuming). Blocking."""
        backend = self._backend
        writer = self._writer = backend.writer()
        try:
            if self._resuming:
                self._seq = writer.claim(self.run_id, self._previous_owner)
            else:
                self._register(writer)
        except StepweaveError:
            self._abandon()
            raise
        except Exception as exc:
            self._abandon()
            raise JournalError(f"{backend.where}: cannot record run {self.run_id!r}: {exc}") from None
        except BaseException:
            self._abandon()
            raise
        ACTIVE.add((backend.key, self.run_id))

    def _register(self, writer: RunWriter) -> None:
        graph = self._graph if self._graph is not None else TaskGraph()
        now = time.time()
        writer.register(
            RunStart(
                run_id=self.run_id,
                name=graph.name,
                started_at=now,
                tasks_total=len(graph),
                meta=dumps(self._meta),
                graph_batch="[" + encode_graph(graph, now) + "]",
                owner=owner_id(),
            )
        )
        self._seq = 1

    def _abandon(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- on the event loop -----------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop, release: Release, failed: Failed) -> None:
        """Where held items go back to once durable, and whom to tell if a commit fails."""
        self._loop = loop
        self._release = release
        self._failed = failed

    def record(self, event: Event) -> None:
        if event.__class__ in _UNKEPT:
            return
        self._events.append(event)
        if not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            # After the callbacks already queued: everything that ends in this loop
            # iteration joins the same batch.
            self._loop.call_soon(self._flush)

    def hold(self, item: Any) -> None:
        """Give ``item`` back (through ``release``) once every event so far is committed."""
        self._held.append(item)
        if not self._scheduled:
            self._scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def durable(self) -> asyncio.Future[None]:
        """A future that resolves once every event recorded so far is committed."""
        assert self._loop is not None
        future = self._loop.create_future()
        self._waiting.append(future)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if self._events or self._held or self._waiting:
            self._queue.put((self._events, self._held, self._waiting))
            self._events, self._held, self._waiting = [], [], []

    async def close(self) -> None:
        """Commit everything recorded, stop the writer and close the file."""
        if self._thread is None:
            return
        self._flush()
        stop = _Stop()
        self._queue.put(stop)
        # The file is closed when this resolves; the thread ends right after (not joined:
        # a join would need a worker thread of its own).
        await asyncio.wrap_future(stop.closed)
        self._thread = None
        ACTIVE.discard((self._backend.key, self.run_id))

    def _committed(
        self, held: list[Any], waiting: list[asyncio.Future[None]], error: BaseException | None
    ) -> None:
        if error is not None and self._failure is None:
            self._failure = error
            self._failed(error)
        for future in waiting:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        if held:
            self._release(held)

    # -- the writer thread -----------------------------------------------------------------

    def _main(self, opened: concurrent.futures.Future[None]) -> None:
        try:
            self.open()
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result(None)
        writer = self._writer
        assert writer is not None
        try:
            stop: _Stop | None = None
            while stop is None:
                events, held, waiting, stop = self._take()
                error: BaseException | None = None
                if events:
                    try:
                        self._commit(writer, events)
                    except StepweaveError as exc:
                        error = exc
                    except Exception as exc:
                        error = JournalError(
                            f"{self._backend.where}: writing run {self.run_id!r} failed: {exc}"
                        )
                if held or waiting or error is not None:
                    self._call_on_loop(self._committed, held, waiting, error)
            # Closed before ``close()`` returns: the run's end leaves no open handle.
            self._abandon()
            stop.closed.set_result(None)
        finally:
            self._abandon()

    def _take(self) -> tuple[list[Event], list[Any], list[asyncio.Future[None]], _Stop | None]:
        """Wait for work, then take everything queued: the group of one commit."""
        items = [self._queue.get()]
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        events: list[Event] = []
        held: list[Any] = []
        waiting: list[asyncio.Future[None]] = []
        stop: _Stop | None = None
        for item in items:
            if isinstance(item, _Stop):
                stop = item
            else:
                events.extend(item[0])
                held.extend(item[1])
                waiting.extend(item[2])
        return events, held, waiting, stop

    def _call_on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        # A closed loop raises RuntimeError: nobody is waiting for these any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)

    def _commit(self, writer: RunWriter, events: list[Event]) -> None:
        batch = encode_batch(events, self._echoes)
        if batch.text == "[]":
            return
        seq = self._seq + 1
        end: RunEnd | None = None
        ended = batch.ended
        if ended is not None:
            result = ended.result
            finished = sum(t.status in _DONE_STATES for t in result.tasks.values())
            end = RunEnd(result.status.value, ended.at, result.error, len(result.tasks), finished)
        writer.append(self.run_id, seq, batch.text, batch.blobs, batch.done, batch.added, end)
        self._seq = seq


def _ignore(*args: Any) -> None:
    """Default callbacks before ``bind``."""
