"""The traced process's half of export: records in, frames out to the export process.

A :class:`Shipper` starts ``python -m orchestrator.telemetry.exportd`` (which builds the
SDK's exporters from the same ``OTEL_*`` variables) and writes it frames of records
(:mod:`.wire`): when 1,024 records are waiting, every second from a small thread when
some are (so a quiet run's spans do not wait for the next burst), on ``force_flush`` and
at exit. Adding a record is one ``deque.append``; the
encoding and the HTTP requests are the other process's work, on another core.

Telemetry never stops the work it observes: when the export process cannot be started or
ends early, one line goes to stderr and later records are dropped.

At exit the shipper sends what is left, closes the pipe and waits for the export process
to finish (up to ``OTEL_BSP_EXPORT_TIMEOUT`` milliseconds, 30 s by default), as the SDK's
own providers do, so a short command loses nothing.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from .wire import encode, write_all

__all__ = ["Shipper"]

BATCH = 1024
INTERVAL = 1.0
#: The pipe's buffer when Linux lets us grow it: a burst never waits for the reader.
PIPE_BYTES = 1 << 20


class Shipper:
    """Buffers records and ships them to an export process it owns."""

    def __init__(self, env: Mapping[str, str] | None = None, *, command: list[str] | None = None) -> None:
        self._records: collections.deque[tuple[Any, ...]] = collections.deque()
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._tokens = 0
        self._acks = b""
        self._closed = False
        self._broken = False
        self._warned = False
        self._process = subprocess.Popen(
            command or [sys.executable, "-m", "orchestrator.telemetry.exportd"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin = self._process.stdin
        self._stdout = self._process.stdout
        self._fd = self._stdin.fileno()
        with contextlib.suppress(AttributeError, OSError):  # Linux only; a bigger pipe is a bonus
            import fcntl

            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        # A child made by os.fork() shares the pipe; its frames would interleave with ours
        # and break the stream: in such a child this shipper drops what it is given.
        os.register_at_fork(after_in_child=self._forked)
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, name="stepweave-telemetry-flush", daemon=True)
        self._timer.start()
        atexit.register(self.shutdown)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The export process's exit status once it has ended (``None`` while it runs)."""
        return self._process.poll()

    def wait_for_exit(self, timeout: float) -> int:
        """Wait for the export process to end by itself; its exit status."""
        return self._process.wait(timeout)

    def add(self, record: tuple[Any, ...]) -> None:
        """Queue one record (any thread); ships a frame when enough are waiting."""
        records = self._records
        records.append(record)
        if len(records) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Ship every queued record now."""
        with self._lock:
            self._ship_locked()

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Ship every queued record and wait until the export process has exported them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._tokens += 1
            token = self._tokens
            if self._broken or self._closed:
                return False
            self._records.append(("f", token))
            if not self._ship_locked():
                return False
            return self._wait_for(token, deadline)

    def shutdown(self) -> None:
        """Ship what is left, end the stream and wait for the export process to finish."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._ship_locked()
            with contextlib.suppress(OSError):
                self._stdin.close()
        timeout = _export_timeout(os.environ)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            print(
                f"stepweave: telemetry export did not finish in {timeout:g} s; stopping it",
                file=sys.stderr,
            )
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(OSError):
            self._stdout.close()
        with contextlib.suppress(ValueError):
            atexit.unregister(self.shutdown)

    # -- inside ----------------------------------------------------------------------------

    def _forked(self) -> None:
        self._broken = self._closed = True
        self._records.clear()

    def _ship_locked(self) -> bool:
        """Write the queued records as one frame; False once the stream is unusable."""
        records = self._records
        count = len(records)
        self._last = time.monotonic()
        if not count or self._broken or self._stdin.closed:  # ended, or spans after shutdown
            if self._broken or self._stdin.closed:
                records.clear()
                return False
            return True
        popleft = records.popleft  # appends of other threads go on at the right end
        batch = [popleft() for _ in range(count)]
        try:
            frame = encode(batch)
        except ValueError:  # a value marshal cannot carry: drop that record, not the batch
            frame = encode(self._sendable(batch))
        try:
            write_all(self._fd, frame)
        except (OSError, ValueError) as exc:  # BrokenPipe: the export process ended
            self._broken = True
            records.clear()
            code = self._process.poll()
            print(
                f"stepweave: telemetry export process ended ({code if code is not None else exc}); "
                "spans and metrics from now on are dropped",
                file=sys.stderr,
            )
            return False
        return True

    def _sendable(self, batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        kept = []
        for record in batch:
            try:
                encode([record])
            except ValueError:
                if not self._warned:
                    self._warned = True
                    print(
                        f"stepweave: a telemetry record ({record[0]!r}) holds a value that cannot be "
                        "sent (not a str, bool, int, float or bytes); such records are dropped",
                        file=sys.stderr,
                    )
            else:
                kept.append(record)
        return kept

    def _wait_for(self, token: int, deadline: float) -> bool:
        # Acknowledgements come in order, one line each; one of an earlier call that timed
        # out may still be in the pipe, so any token at least ours will do.
        fd = self._stdout.fileno()
        while True:
            lines = self._acks.split(b"\n")
            self._acks = lines.pop()  # an unfinished line stays for the next read
            if any(line.strip().isdigit() and int(line) >= token for line in lines):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return False
            chunk = os.read(fd, 4096)
            if not chunk:  # the export process ended
                return False
            self._acks += chunk

    def _tick(self) -> None:
        while not self._stop.wait(INTERVAL):
            if self._records and time.monotonic() - self._last >= INTERVAL:
                self.flush()


def _export_timeout(env: Mapping[str, str]) -> float:
    try:
        return max(1.0, int(env.get("OTEL_BSP_EXPORT_TIMEOUT", "30000")) / 1000)
    except ValueError:
        return 30.0
