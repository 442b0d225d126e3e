"""Incremental plan parsing: find each complete task object while the JSON still streams in.

A character-level scanner tracks strings, escapes and nesting, so it knows the instant a
task object in the plan's ``"tasks"`` array closes, whatever the chunking: a chunk may
hold half a task or three. Each closed task's text is then parsed whole, so a task is
handed on only when complete (no partial-JSON guessing about whether a string or number
is finished). The scanner is a pure function of the text so far: feeding it in any
chunks gives the same tasks in the same order.

It tolerates prose around the JSON (the document starts at the first ``{`` or ``[``, and
text after it ends is ignored) and a bare array of tasks in place of ``{"tasks": [...]}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

__all__ = ["JsonScanner", "ScannedTask"]

_WHITESPACE = frozenset(" \t\r\n")
#: Inside a string only a backslash or the closing quote matters.
_STRING_STOP = re.compile(r'["\\]')
#: Before the document only its opening bracket matters.
_ROOT_START = re.compile(r"[{\[]")


@dataclass(frozen=True, slots=True)
class ScannedTask:
    """One element of the tasks array: its position and value, or why it is unusable."""

    index: int
    value: Any = None
    problem: str | None = None


class _Capture:
    """The text of one open span (a task object, a key) collected across chunks.

    Each character is copied once, when its chunk ends or the span closes, so capturing
    stays linear in the plan's size however finely the model's answer is chunked.
    """

    __slots__ = ("_parts", "_start")

    def __init__(self) -> None:
        self._parts: list[str] = []
        #: Where the span starts in the current chunk; -1 when no span is open.
        self._start = -1

    @property
    def open(self) -> bool:
        return self._start >= 0

    def begin(self, index: int) -> None:
        self._parts = []
        self._start = index

    def end(self, chunk: str, index: int) -> str:
        """Close the span at ``chunk[index]`` (inclusive) and return its whole text."""
        self._parts.append(chunk[self._start : index + 1])
        self._start = -1
        text = "".join(self._parts)
        self._parts = []
        return text

    def keep(self, chunk: str) -> None:
        """The chunk ended with the span still open: keep its part, continue in the next one."""
        if self._start >= 0:
            self._parts.append(chunk[self._start :])
            self._start = 0


class JsonScanner:
    """Scans one JSON document as it streams; reports the elements of its ``tasks_key`` array.

    ``feed(chunk)`` returns the task elements completed by that chunk; ``close()``
    returns the problems with the document as a whole (nothing found, truncated, not
    valid JSON, no tasks array), after which ``document`` holds the parsed value.

    The cost is linear in the text: each chunk is scanned once and never joined to the
    text before it (a 2 MB plan in 4-character chunks must not cost 500,000 copies of a
    growing string); strings, most of a plan, are skipped with one search per string.
    """

    def __init__(self, tasks_key: str | None = "tasks") -> None:
        self._tasks_key = tasks_key
        self._chunks: list[str] = []
        self._joined = ""
        #: Characters fed before the current chunk (document positions are global).
        self._offset = 0
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False
        self._root_start = -1
        self._root_end = -1
        self._root_expects_key = False
        self._key = _Capture()
        self._last_root_key: str | None = None
        #: Stack depth inside the tasks array, once it opened; -1 before.
        self._tasks_depth = -1
        self._tasks_closed = False
        self._element = _Capture()
        self._scalar_element = False
        self._index = 0
        self.document: Any = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @property
    def length(self) -> int:
        """How many characters were fed so far."""
        return self._offset

    @property
    def started(self) -> bool:
        """Whether the JSON document has begun (prose before it does not count)."""
        return self._root_start >= 0

    def feed(self, chunk: str) -> list[ScannedTask]:
        """Add ``chunk``; return the task elements it completed, in order."""
        if not chunk:
            return []
        self._chunks.append(chunk)
        found: list[ScannedTask] = []
        try:
            if self._root_end < 0:
                self._scan(chunk, found)
        finally:
            self._offset += len(chunk)
        return found

    def _scan(self, chunk: str, found: list[ScannedTask]) -> None:
        stack = self._stack
        size = len(chunk)
        i = 0
        while i < size:
            if self._in_string:
                if self._escape:
                    self._escape = False
                    i += 1
                    continue
                stop = _STRING_STOP.search(chunk, i)
                if stop is None:
                    break  # the string goes on in the next chunk
                i = stop.start()
                if chunk[i] == "\\":
                    self._escape = True
                else:
                    self._in_string = False
                    if self._key.open:
                        self._last_root_key = _decode_key(self._key.end(chunk, i))
                i += 1
                continue
            if not stack:
                start = _ROOT_START.search(chunk, i)
                if start is None:
                    break  # prose before the document
                i = start.start()
                self._open_root(chunk[i], i)
                i += 1
                continue
            char = chunk[i]
            depth = len(stack)
            in_tasks = depth == self._tasks_depth
            if char == '"':
                self._in_string = True
                if depth == 1 and stack[0] == "{" and self._root_expects_key:
                    self._key.begin(i)
                elif in_tasks:
                    self._scalar_element = True
            elif char in "{[":
                if (
                    self._tasks_depth < 0
                    and depth == 1
                    and char == "["
                    and stack[0] == "{"
                    and not self._root_expects_key
                    and self._last_root_key == self._tasks_key
                ):
                    self._tasks_depth = 2
                elif in_tasks:
                    if char == "{":
                        self._element.begin(i)
                    else:
                        self._scalar_element = True
                stack.append(char)
            elif char in "}]":
                stack.pop()
                depth = len(stack)
                if depth == self._tasks_depth and char == "}" and self._element.open:
                    found.append(self._parse_element(self._element.end(chunk, i)))
                elif depth == self._tasks_depth - 1 and self._tasks_depth > 0 and not self._tasks_closed:
                    self._end_scalar(found)
                    self._tasks_closed = True
                if not stack:
                    self._root_end = self._offset + i + 1
                    return  # the document ended: the rest is prose
            elif depth == 1 and stack[0] == "{":
                if char == ":":
                    self._root_expects_key = False
                elif char == ",":
                    self._root_expects_key = True
            elif in_tasks:
                if char == ",":
                    self._end_scalar(found)
                elif char not in _WHITESPACE:
                    self._scalar_element = True
            i += 1
        self._key.keep(chunk)
        self._element.keep(chunk)

    def _open_root(self, char: str, index: int) -> None:
        self._root_start = self._offset + index
        self._stack.append(char)
        if char == "{":
            self._root_expects_key = True
        elif self._tasks_key is not None:
            self._tasks_depth = 1  # a bare array: the tasks themselves

    def _parse_element(self, text: str) -> ScannedTask:
        index = self._index
        self._index += 1
        try:
            return ScannedTask(index, _loads(text))
        except ValueError as exc:
            return ScannedTask(index, problem=f"tasks[{index}] is not valid JSON: {exc}")

    def _end_scalar(self, found: list[ScannedTask]) -> None:
        """Close an element of the tasks array that was not an object."""
        if self._scalar_element:
            index = self._index
            self._index += 1
            found.append(ScannedTask(index, problem=f"tasks[{index}] is not a JSON object"))
            self._scalar_element = False

    def close(self) -> list[str]:
        """The problems with the whole document (empty when it is complete and valid)."""
        text = self.text
        if self._root_start < 0:
            excerpt = _excerpt(text)
            return [f"no JSON found in the response (it began: {excerpt})"]
        if self._root_end < 0:
            return [
                f"the JSON ended early, after {len(text) - self._root_start} characters "
                f"(truncated at ...{text[-60:]!r}); send the complete JSON"
            ]
        try:
            self.document = _loads(text[self._root_start : self._root_end])
        except ValueError as exc:
            return [f"the response is not valid JSON: {exc}"]
        if self._tasks_key is not None and self._tasks_depth < 0:
            return [f'the JSON has no "{self._tasks_key}" list; reply with {{"{self._tasks_key}": [...]}}']
        return []


def _loads(text: str) -> Any:
    """Parse JSON; a raw line break or tab inside a string (small models write them) is
    read as the character it is rather than rejected."""
    try:
        return from_json(text)
    except ValueError as exc:
        if "control character" not in str(exc):
            raise
        return json.loads(text, strict=False)  # linear, like from_json; raises ValueError too


def _decode_key(raw: str) -> str | None:
    try:
        value = from_json(raw)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _excerpt(text: str, limit: int = 80) -> str:
    text = text.strip()
    if not text:
        return "an empty response"
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
