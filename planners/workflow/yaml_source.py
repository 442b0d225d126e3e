"""Read YAML into plain data plus a map from each value's path to its line and column.

PyYAML's safe composer gives nodes with marks; we build the Python values ourselves so
every value keeps its position (``("steps", 3, "args")`` → line 14, column 7), which is
how a pydantic error location or a graph problem becomes ``flow.yaml:14:7``.

Scalars follow YAML 1.2's core schema rather than PyYAML's YAML 1.1 defaults, because the
1.1 rules silently change what automation authors write: ``no``/``on`` are strings (not
booleans), ``12:30`` is a string (not 750), ``010`` is a string (not 8) and dates stay
strings, and numbers have no ``_`` separators. Each pattern is a subset of PyYAML's, so
whatever ``yaml.safe_dump`` writes unquoted as a string still reads back as a string:
generated workflows round-trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .problems import Problem, WorkflowFileError

__all__ = ["Document", "Mark", "Path", "SourceMap", "read_yaml"]

#: A value's position in the document: keys and list indexes from the root.
Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_JSON_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))
_MERGE = _TAG + "merge"
#: Far beyond any real workflow; stops a "billion laughs" file from exhausting memory.
_MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and no octal, base-60 or timestamps."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in (_TAG + "null", _MERGE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _TAG + "int", re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|[-+]?0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _TAG + "float",
    re.compile(
        r"""^(?:[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?
            |\.[0-9]+(?:[eE][-+][0-9]+)?
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark | None) -> Mark | None:
        return cls(mark.line + 1, mark.column + 1) if mark is not None else None


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of a document is, by path."""

    file: str | None = None
    values: dict[Path, Mark] = field(default_factory=dict)
    keys: dict[Path, Mark] = field(default_factory=dict)

    def find(self, path: Path, *, key: bool = False) -> Mark | None:
        """The mark of ``path`` (its key's if ``key``), else of its nearest located ancestor."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None

    def problem(
        self, path: Path, message: str, *, step: str | None = None, hint: str | None = None, key: bool = False
    ) -> Problem:
        """A ``Problem`` located at ``path`` in this document."""
        mark = self.find(path, key=key)
        return Problem(
            self.file,
            mark.line if mark else None,
            mark.column if mark else None,
            step,
            message,
            hint,
        )


@dataclass(frozen=True)
class Document:
    """A parsed YAML document: its plain data and where each part came from."""

    data: Any
    source_map: SourceMap


def read_yaml(text: str, file: str | None = None) -> Document:
    """Parse ``text`` safely; ``WorkflowFileError`` names every problem with its position."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise WorkflowFileError([Problem(file, 1, 1, None, "the file is empty", _SHAPE_HINT)])
        builder = _Builder(loader, SourceMap(file))
        data = builder.value(node, ())
    except yaml.MarkedYAMLError as exc:
        raise WorkflowFileError([_syntax_problem(exc, text, file)]) from None
    except yaml.YAMLError as exc:  # unmarked: reader errors (bad bytes) and the like
        raise WorkflowFileError([Problem(file, None, None, None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if builder.problems:
        raise WorkflowFileError(builder.problems)
    return Document(data, builder.source_map)


_SHAPE_HINT = "a workflow is a mapping with at least `name:` and `steps:`"


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str | None) -> Problem:
    """The parser's own line and column, its message, and a hint for the usual causes."""
    mark = Mark.of(exc.problem_mark) or Mark.of(exc.context_mark)
    message = f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}"
    context_at = Mark.of(exc.context_mark)
    if exc.context and exc.problem and context_at is not None:
        if exc.problem.startswith("but "):  # "expected X at line 1, but found Y"
            message = f"invalid YAML: {exc.context} at line {context_at.line}, {exc.problem}"
        else:
            message += f" ({exc.context} at line {context_at.line})"
    return Problem(
        file,
        mark.line if mark else None,
        mark.column if mark else None,
        None,
        message,
        _syntax_hint(exc, text, mark),
    )


def _syntax_hint(exc: yaml.MarkedYAMLError, text: str, mark: Mark | None) -> str | None:
    problem = f"{exc.context} {exc.problem}"
    lines = text.splitlines()
    here = lines[mark.line - 1] if mark and 0 < mark.line <= len(lines) else ""
    if "'\\t'" in problem:
        return "indent with spaces: YAML does not allow tabs for indentation"
    if "${{" in here:
        return 'quote a value that contains ${{ … }}, e.g. path: "${{ item }}"'
    if "single document" in problem:
        return "a workflow file holds one document: remove the extra '---'"
    return None


class _Builder:
    """Builds plain values from nodes, recording marks and collecting problems."""

    def __init__(self, loader: _Loader, source_map: SourceMap) -> None:
        self.loader = loader
        self.source_map = source_map
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._flattened: set[int] = set()
        self._count = 0

    def value(self, node: Node, path: Path) -> Any:
        self.source_map.values[path] = _mark(node)
        self._count += 1
        if self._count > _MAX_VALUES:  # aliases of aliases can expand exponentially
            mark = _mark(node)
            message = f"the document expands to more than {_MAX_VALUES} values"
            raise WorkflowFileError(
                [Problem(self.source_map.file, mark.line, mark.column, None, message, "too many aliases?")]
            )
        if node.tag not in _JSON_TAGS:
            tag = node.tag.replace(_TAG, "!!")
            self._problem(node, f"the YAML tag {tag!r} is not supported", "values are JSON-like data")
            return None
        if id(node) in self._active:
            self._problem(node, "an alias refers to itself (a recursive anchor)", None)
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.value(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self._active.discard(id(node))

    def scalar(self, node: ScalarNode) -> Any:
        try:
            return self.loader.construct_object(node)
        except (ValueError, yaml.YAMLError) as exc:  # an explicit tag on a value that isn't one
            self._problem(node, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}", None)
            return None

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        if id(node) not in self._flattened:
            self._flattened.add(id(node))
            self._check_duplicates(node)
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a mapping key must be a plain value, not a list or mapping", None)
                continue
            key = self.scalar(key_node)
            self.source_map.keys[(*path, key)] = _mark(key_node)
            result[key] = self.value(value_node, (*path, key))
        return result

    def _check_duplicates(self, node: MappingNode) -> None:
        """YAML says keys are unique; PyYAML silently keeps the last one. We say so."""
        seen: dict[Any, Node] = {}
        for key_node, _ in _own_pairs(node):
            key = self.loader.construct_object(key_node)
            first = seen.setdefault(key, key_node)
            if first is not key_node:
                self._problem(key_node, f"duplicate key {key!r}", f"first at line {_mark(first).line}")

    def _problem(self, node: Node, message: str, hint: str | None) -> None:
        mark = _mark(node)
        self.problems.append(Problem(self.source_map.file, mark.line, mark.column, None, message, hint))


def _own_pairs(node: MappingNode) -> Iterator[tuple[ScalarNode, Node]]:
    """The scalar-keyed pairs written in ``node`` itself (merge keys excluded)."""
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE:
            yield key_node, value_node


def _mark(node: Node) -> Mark:
    mark = Mark.of(node.start_mark)
    assert mark is not None
    return mark
