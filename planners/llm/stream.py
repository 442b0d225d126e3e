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

from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

__all__ = ["JsonScanner", "ScannedTask"]

_WHITESPACE = frozenset(" \t\r\n")


@dataclass(frozen=True, slots=True)
class ScannedTask:
    """One element of the tasks array: its position and value, or why it is unusable."""

    index: int
    value: Any = None
    problem: str | None = None


class JsonScanner:
    """Scans one JSON document as it streams; reports the elements of its ``tasks_key`` array.

    ``feed(chunk)`` returns the task elements completed by that chunk; ``close()``
    returns the problems with the document as a whole (nothing found, truncated, not
    valid JSON, no tasks array), after which ``document`` holds the parsed value.
    """

    def __init__(self, tasks_key: str | None = "tasks") -> None:
        self._tasks_key = tasks_key
        self._text = ""
        self._pos = 0
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False
        self._root_start = -1
        self._root_end = -1
        self._root_expects_key = False
        self._key_start = -1
        self._last_root_key: str | None = None
        #: Stack depth inside the tasks array, once it opened; -1 before.
        self._tasks_depth = -1
        self._tasks_closed = False
        self._element_start = -1
        self._scalar_element = False
        self._index = 0
        self.document: Any = None

    @property
    def text(self) -> str:
        """Everything fed so far."""
        return self._text

    @property
    def started(self) -> bool:
        """Whether the JSON document has begun (prose before it does not count)."""
        return self._root_start >= 0

    def feed(self, chunk: str) -> list[ScannedTask]:
        """Add ``chunk``; return the task elements it completed, in order."""
        self._text += chunk
        found: list[ScannedTask] = []
        text = self._text
        stack = self._stack
        for i in range(self._pos, len(text)):
            char = text[i]
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                elif char == '"':
                    self._in_string = False
                    if self._key_start >= 0:
                        self._last_root_key = _decode_key(text[self._key_start : i + 1])
                        self._key_start = -1
                continue
            if self._root_end >= 0:
                break  # the document ended: the rest is prose
            if not stack:
                if char in "{[":
                    self._open_root(char, i)
                continue
            depth = len(stack)
            in_tasks = depth == self._tasks_depth
            if char == '"':
                self._in_string = True
                if depth == 1 and stack[0] == "{" and self._root_expects_key:
                    self._key_start = i
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
                        self._element_start = i
                    else:
                        self._scalar_element = True
                stack.append(char)
            elif char in "}]":
                stack.pop()
                depth = len(stack)
                if depth == self._tasks_depth and char == "}" and self._element_start >= 0:
                    found.append(self._element(text[self._element_start : i + 1]))
                    self._element_start = -1
                elif depth == self._tasks_depth - 1 and self._tasks_depth > 0 and not self._tasks_closed:
                    self._end_scalar(found)
                    self._tasks_closed = True
                if not stack:
                    self._root_end = i + 1
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
        self._pos = len(text)
        return found

    def _open_root(self, char: str, index: int) -> None:
        self._root_start = index
        self._stack.append(char)
        if char == "{":
            self._root_expects_key = True
        elif self._tasks_key is not None:
            self._tasks_depth = 1  # a bare array: the tasks themselves

    def _element(self, text: str) -> ScannedTask:
        index = self._index
        self._index += 1
        try:
            return ScannedTask(index, from_json(text))
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
        if self._root_start < 0:
            excerpt = _excerpt(self._text)
            return [f"no JSON found in the response (it began: {excerpt})"]
        if self._root_end < 0:
            return [
                f"the JSON ended early, after {len(self._text) - self._root_start} characters "
                f"(truncated at ...{self._text[-60:]!r}); send the complete JSON"
            ]
        try:
            self.document = from_json(self._text[self._root_start : self._root_end])
        except ValueError as exc:
            return [f"the response is not valid JSON: {exc}"]
        if self._tasks_key is not None and self._tasks_depth < 0:
            return [f'the JSON has no "{self._tasks_key}" list; reply with {{"{self._tasks_key}": [...]}}']
        return []


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
