"""What a traced process sends its export process (:mod:`.shipping` → :mod:`.exportd`).

A stream of frames on the export process's standard input: four bytes of length (big
endian), then one ``marshal``-ed list of records. ``marshal`` because it is the fastest
serialiser of plain tuples, dicts and strings in the standard library (~0.3 µs a record);
the stream only ever joins a process to the child it started, never a peer or a file, so
no other program's data is read with it. Each record is a tuple whose first item says
what it is:

- ``("i", key, kind, name, unit, description, scope, version)``: a metric instrument,
  sent once before its first point; ``kind`` is one of ``INSTRUMENT_KINDS``;
- ``("m", key, value, attributes)``: one point of instrument ``key``;
- ``("s", *SPAN_FIELDS)``: one ended span;
- ``("f", token)``: export everything so far, then write ``token`` and a newline on
  standard output (a ``force_flush`` of the traced process waits for it).

A span's fields are plain data (``SPAN_FIELDS``): ids as integers, times in nanoseconds
since the epoch, enum members as their values, events as ``(name, time, attributes)``
and links as ``(trace_id, span_id, attributes)``.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Iterator
from typing import Any, BinaryIO

__all__ = [
    "INSTRUMENT_KINDS",
    "MAX_FRAME",
    "SPAN_FIELDS",
    "encode",
    "read_frames",
    "write_all",
]

SPAN_FIELDS = (
    "trace_id",
    "span_id",
    "parent_span_id",  # 0: a root span
    "parent_is_remote",
    "trace_flags",
    "trace_state",  # a tuple of (key, value) pairs
    "name",
    "kind",  # SpanKind's value
    "start_ns",
    "end_ns",
    "status_code",  # StatusCode's value
    "status_description",
    "attributes",
    "events",
    "links",
    "scope",
    "scope_version",
)

INSTRUMENT_KINDS = ("counter", "up_down_counter", "histogram", "gauge")

#: A frame larger than this is a broken stream, not a batch (a batch is ~100 KB).
MAX_FRAME = 64 * 1024 * 1024

_LENGTH = 4


def encode(records: list[tuple[Any, ...]]) -> bytes:
    """One frame holding ``records``."""
    data = marshal.dumps(records)
    return len(data).to_bytes(_LENGTH, "big") + data


def read_frames(stream: BinaryIO) -> Iterator[list[tuple[Any, ...]]]:
    """The record lists of ``stream``'s frames, until it ends (a cut frame ends it too)."""
    while True:
        head = _read_exactly(stream, _LENGTH)
        if head is None:
            return
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            raise ValueError(f"a telemetry frame of {size} bytes (more than {MAX_FRAME})")
        data = _read_exactly(stream, size)
        if data is None:
            return
        records = marshal.loads(data)
        if not isinstance(records, list):
            raise ValueError(f"a telemetry frame holds a {type(records).__name__}, not a list")
        yield records


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to the file descriptor (a pipe takes at most its buffer at a time)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
