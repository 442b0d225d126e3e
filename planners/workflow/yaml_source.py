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

Input files are untrusted, so reading is bounded (``YamlLimits``): the file's size, how
many values aliases may expand to (a "billion laughs" file is tiny and expands
exponentially), and how deep values nest. Every failure is a ``WorkflowFileError`` naming
the file and, when known, the line: never a traceback. ``safe_load`` is the same reader
for other YAML (a guide's front matter).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from .problems import Problem, WorkflowFileError

__all__ = [
    "MAX_BYTES_ENV",
    "Document",
    "Mark",
    "Path",
    "SourceMap",
    "YamlLimits",
    "compose_loader",
    "paused_gc",
    "read_text",
    "read_yaml",
    "safe_load",
]

#: A value's position in the document: keys and list indexes from the root.
Path = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_JSON_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "seq", "map"))
_MERGE = _TAG + "merge"
_STR = _TAG + "str"
#: Overrides ``YamlLimits.max_bytes`` for the CLI (a number of bytes).
MAX_BYTES_ENV = "STEPWEAVE_MAX_YAML_BYTES"


@dataclass(frozen=True, slots=True)
class YamlLimits:
    """Bounds on what reading one YAML document may cost.

    Args:
        max_bytes: the largest text accepted (32 MiB holds a few hundred thousand steps;
            ``$STEPWEAVE_MAX_YAML_BYTES`` overrides the default).
        max_alias_values: how many values aliases (``*name``, ``<<: *name``) may expand
            to in all. Values written out in the file do not count: a 100,000-step
            workflow is fine, ten aliases of ten aliases of ... are not.
        max_depth: how deeply lists and mappings may nest (real files: under 10).
    """

    max_bytes: int = 32 * 1024 * 1024
    max_alias_values: int = 100_000
    max_depth: int = 100

    @classmethod
    def from_env(cls, file: str | None = None) -> YamlLimits:
        """The defaults, with ``max_bytes`` from ``$STEPWEAVE_MAX_YAML_BYTES`` when set."""
        configured = os.environ.get(MAX_BYTES_ENV, "").strip()
        if not configured:
            return cls()
        try:
            max_bytes = int(configured)
            if max_bytes <= 0:
                raise ValueError
        except ValueError:
            message = f"${MAX_BYTES_ENV} must be a positive number of bytes, not {configured!r}"
            raise WorkflowFileError([Problem(file, None, None, None, message)]) from None
        return cls(max_bytes=max_bytes)


class _TooDeep(yaml.scanner.ScannerError):
    """Flow collections nested past ``_Loader.max_flow_level`` (libyaml has its own bound)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema booleans and no octal, base-60 or timestamps."""

    #: How deeply ``[`` and ``{`` may nest before the scanner stops (``read_yaml`` sets it to
    #: the limits' ``max_depth``). PyYAML's scanner re-checks every open level on every
    #: token, so ``[[[[…`` cost ~0.7 s of CPU before the composer's recursion stopped it.
    max_flow_level = YamlLimits().max_depth

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= self.max_flow_level:
            raise _TooDeep(None, None, "exceeded maximum nesting depth", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


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


def _c_loader() -> type[_Loader] | None:
    """libyaml's parser and composer with our scalar rules: about seven times faster.

    Only libyaml 0.2.6 and later bound nesting (1000 levels) before composing; an older
    one would recurse in C on ``[[[[…`` and crash the process, so we use PyYAML's own
    composer then, whose recursion Python stops (``RecursionError``, reported cleanly).
    """
    try:
        from yaml._yaml import CParser, get_version
    except ImportError:
        return None
    if get_version() < (0, 2, 6):
        return None

    class Loader(CParser, SafeConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    Loader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    return Loader  # type: ignore[return-value]


_FAST_LOADER = _c_loader()


def compose_loader() -> type[_Loader]:
    """The loader ``read_yaml`` parses with: libyaml's when it is safe, else PyYAML's own.

    For a cheap first look at text (``yaml.compose`` keeps aliases shared, so a bomb costs
    nothing). Both refuse ``[[[[…`` in milliseconds with "exceeded maximum nesting depth":
    libyaml at 1,000 levels, ours at ``max_flow_level``. (``yaml.SafeLoader`` itself scans
    on, quadratically, until its composer's recursion stops it: ~0.7 s of CPU.)
    """
    return _FAST_LOADER or _Loader


class Mark(NamedTuple):
    """A 1-based line and column (a tuple: a big file has hundreds of thousands)."""

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
        self,
        path: Path,
        message: str,
        *,
        step: str | None = None,
        hint: str | None = None,
        key: bool = False,
        severity: Literal["error", "warning"] = "error",
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
            severity,
        )


@dataclass(frozen=True)
class Document:
    """A parsed YAML document: its plain data and where each part came from."""

    data: Any
    source_map: SourceMap


def read_text(path: str | os.PathLike[str], *, limits: YamlLimits | None = None) -> str:
    """A YAML file's text, refused (``WorkflowFileError``) if unreadable or over ``max_bytes``.

    The size is checked before reading, and the read stops one byte past the cap, so a
    huge file costs nothing to refuse.
    """
    file = os.fspath(path)
    limits = limits or YamlLimits.from_env(file)
    try:
        with open(file, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
        if len(data) > limits.max_bytes:
            raise WorkflowFileError([_too_big(file, limits)])
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkflowFileError(
            [Problem(file, None, None, None, f"cannot read the file: {reason}")]
        ) from None


def _too_big(file: str | None, limits: YamlLimits) -> Problem:
    return Problem(
        file,
        None,
        None,
        None,
        f"the file is larger than {limits.max_bytes} bytes",
        f"raise the limit with ${MAX_BYTES_ENV}=<bytes> if it really is this big",
    )


def read_yaml(
    text: str, file: str | None = None, *, limits: YamlLimits | None = None, first_line: int = 1
) -> Document:
    """Parse ``text`` safely; ``WorkflowFileError`` names every problem with its position.

    ``first_line`` is the line ``text`` starts at in ``file`` (for YAML embedded in
    another file, such as front matter), so positions point into the real file.
    """
    limits = limits or YamlLimits.from_env(file)
    if len(text) > limits.max_bytes:  # characters: at most the byte count, a cheap first check
        raise WorkflowFileError([_too_big(file, limits)])
    with paused_gc():
        return _read(text, file, limits, first_line - 1)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a document is built.

    Building hundreds of thousands of small acyclic objects makes the collector run over
    and over on a growing heap: two thirds of the time of loading a 50,000-step workflow.
    Reference counting still frees everything; the collector runs again afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(text: str, file: str | None, limits: YamlLimits, offset: int) -> Document:
    loader_class = _FAST_LOADER or _Loader
    loader: _Loader | None = None
    try:
        loader = loader_class(text)  # the pure-Python reader checks every character here
        if isinstance(loader, _Loader):
            loader.max_flow_level = limits.max_depth
        node = loader.get_single_node()
        if node is None:
            raise WorkflowFileError([Problem(file, offset + 1, 1, None, "the file is empty", _SHAPE_HINT)])
        builder = _Builder(loader, SourceMap(file), limits, offset)
        data = builder.value(node, ())
    except _TooDeep as exc:  # PyYAML's own scanner, at max_depth flow levels
        mark = Mark.of(exc.problem_mark)
        message = f"invalid YAML: lists or mappings nest more than {limits.max_depth} levels deep"
        line, column = (mark.line + offset, mark.column) if mark is not None else (None, None)
        raise WorkflowFileError([Problem(file, line, column, None, message)]) from None
    except yaml.reader.ReaderError as exc:  # a NUL or other control character, bad UTF-8
        bytewise = loader_class is not _Loader  # libyaml counts bytes, PyYAML characters
        raise WorkflowFileError([_reader_problem(exc, text, file, offset, bytewise=bytewise)]) from None
    except yaml.MarkedYAMLError as exc:
        raise WorkflowFileError([_syntax_problem(exc, text, file, offset)]) from None
    except yaml.YAMLError as exc:  # unmarked: anything else PyYAML refuses
        raise WorkflowFileError([Problem(file, None, None, None, f"invalid YAML: {exc}")]) from None
    except RecursionError:  # PyYAML's own composer on very deep nesting (no libyaml)
        message = f"invalid YAML: lists or mappings nest more than {limits.max_depth} levels deep"
        raise WorkflowFileError([Problem(file, None, None, None, message)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.problems:
        raise WorkflowFileError(builder.problems)
    return Document(data, builder.source_map)


def safe_load(
    text: str, source: str | None = None, *, limits: YamlLimits | None = None, first_line: int = 1
) -> Any:
    """Plain data from YAML text under the same rules and limits as workflow files.

    For YAML that is not a workflow (a guide's front matter): JSON-like values only, YAML
    1.2 scalars, bounded size, alias expansion and depth. Raises ``WorkflowFileError``
    whose problems name ``source`` and the line (offset by ``first_line``).
    """
    return read_yaml(text, source, limits=limits, first_line=first_line).data


_SHAPE_HINT = "a workflow is a mapping with at least `name:` and `steps:`"


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str | None, offset: int) -> Problem:
    """The parser's own line and column, its message, and a hint for the usual causes."""
    mark = Mark.of(exc.problem_mark) or Mark.of(exc.context_mark)
    message = f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}"
    if exc.problem and exc.problem.startswith("did not find expected") and mark is not None:
        found = _character_at(text, mark)  # libyaml does not say what it found instead
        message += f", but found {found!r}" if found else ", but the file ends"
    context_at = Mark.of(exc.context_mark)
    if exc.context and exc.problem and context_at is not None:
        if exc.problem.startswith("but "):  # "expected X at line 1, but found Y"
            message = f"invalid YAML: {exc.context} at line {context_at.line + offset}, {exc.problem}"
        elif exc.problem != "exceeded maximum nesting depth":
            message += f" ({exc.context} at line {context_at.line + offset})"
    if "maximum nesting depth" in message:  # libyaml's own bound (1000 levels)
        message = "invalid YAML: lists or mappings nest too deeply (libyaml stops at 1000 levels)"
    return Problem(
        file,
        mark.line + offset if mark else None,
        mark.column if mark else None,
        None,
        message,
        _syntax_hint(exc, text, mark),
    )


def _character_at(text: str, mark: Mark) -> str:
    lines = text.splitlines()
    here = lines[mark.line - 1] if 0 < mark.line <= len(lines) else ""
    return here[mark.column - 1 : mark.column]


def _syntax_hint(exc: yaml.MarkedYAMLError, text: str, mark: Mark | None) -> str | None:
    problem = f"{exc.context} {exc.problem}"
    lines = text.splitlines()
    here = lines[mark.line - 1] if mark and 0 < mark.line <= len(lines) else ""
    # PyYAML names the tab ("found character '\t'"), libyaml does not: look at the text.
    if "'\\t'" in problem or (
        "cannot start any token" in problem and "\t" in here[: mark.column if mark else 0]
    ):
        return "indent with spaces: YAML does not allow tabs for indentation"
    if "${{" in here:
        return 'quote a value that contains ${{ … }}, e.g. path: "${{ item }}"'
    if "single document" in problem:
        return "a workflow file holds one document: remove the extra '---'"
    return None


def _reader_problem(
    exc: yaml.reader.ReaderError, text: str, file: str | None, offset: int, *, bytewise: bool
) -> Problem:
    """A character YAML forbids (NUL, ESC, ...), with the line and column it is on."""
    if bytewise:
        before = text.encode("utf-8", "surrogatepass")[: exc.position].decode("utf-8", "ignore")
    else:
        before = text[: exc.position]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    character = exc.character
    shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
    return Problem(
        file,
        line + offset,
        column,
        None,
        f"invalid YAML: the character {shown} is not allowed ({exc.reason})",
        "YAML files are text: remove control characters, or write them as escapes in a double-quoted string",
    )


class _Builder:
    """Builds plain values from nodes, recording marks and collecting problems.

    A node met a second time is an alias (the composer hands back the anchored node
    itself): everything built under it counts against ``max_alias_values``. Values written
    out in the file are free, whatever the file's size (that is bounded by ``max_bytes``).
    """

    def __init__(self, loader: _Loader, source_map: SourceMap, limits: YamlLimits, offset: int) -> None:
        self.loader = loader
        self.source_map = source_map
        self.limits = limits
        self.offset = offset
        self.problems: list[Problem] = []
        self._active: set[int] = set()
        self._seen: set[int] = set()
        self._flattened: set[int] = set()
        self._checked: set[int] = set()
        self._merged: dict[int, set[int]] = {}  # mapping → its pairs that came from merges
        self._in_alias = 0
        self._written = 0  # values written out in the file
        self._expanded = 0  # values made by aliases and merge keys
        self._expanded_text = 0  # and the characters of their text
        self._outer_alias = Mark(1, 1)  # the anchor whose alias is being expanded

    def value(self, node: Node, path: Path) -> Any:
        start = node.start_mark
        self.source_map.values[path] = Mark(start.line + 1 + self.offset, start.column + 1)
        key = id(node)
        # The composer hands back the anchored node itself for an alias: a node met twice
        # is an alias use, and everything built under it is expansion.
        alias = key in self._seen
        if alias or self._in_alias:
            if not self._in_alias:
                self._outer_alias = self._mark(node)
            self._count_expansion(len(node.value) if isinstance(node, ScalarNode) else 0)
        else:
            self._seen.add(key)
            self._written += 1
        if isinstance(node, ScalarNode):  # the hot path: most values are plain scalars
            if node.tag == _STR:
                return node.value
            if node.tag not in _JSON_TAGS:
                return self._unsupported(node)
            return self.scalar(node)
        if node.tag not in _JSON_TAGS:
            return self._unsupported(node)
        if len(path) > self.limits.max_depth:
            self._stop(node, f"lists or mappings nest more than {self.limits.max_depth} levels deep", None)
        if key in self._active:
            self._problem(node, "an alias refers to itself (a recursive anchor)", None)
            return None
        self._active.add(key)
        self._in_alias += alias
        try:
            if isinstance(node, SequenceNode):
                return [self.value(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self._active.discard(key)
            self._in_alias -= alias

    def _count_expansion(self, characters: int) -> None:
        """One more value (of ``characters`` if text) made by an alias; stop past the budget.

        Aliases may add as many values as the file writes out, plus ``max_alias_values``:
        a big file that reuses a few anchors a lot is fine, ten aliases of ten aliases of
        ... are not. The text they add is bounded by ``max_bytes``, so one long string
        repeated a million times is refused too (it would be written out in full by
        anything that serialises the workflow: the journal, a report).
        """
        self._expanded += 1
        self._expanded_text += characters
        if self._expanded > self.limits.max_alias_values + self._written:
            message = (
                f"aliases add more than {self.limits.max_alias_values} values beyond the "
                f"{self._written} the file writes out"
            )
        elif self._expanded_text > self.limits.max_bytes:
            message = f"aliases add more than {self.limits.max_bytes} characters of text"
        else:
            return
        hint = "an alias bomb? write the values out, or nest fewer aliases"
        self._stop(self._outer_alias, message, hint)

    def _unsupported(self, node: Node) -> None:
        tag = node.tag.replace(_TAG, "!!")
        self._problem(node, f"the YAML tag {tag!r} is not supported", "values are JSON-like data")

    def scalar(self, node: ScalarNode) -> Any:
        if node.tag == _STR:  # most values: skip the constructor's bookkeeping
            return node.value
        try:
            return self.loader.construct_object(node)
        except (ValueError, yaml.YAMLError) as exc:  # an explicit tag on a value that isn't one
            self._problem(node, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}", None)
            return None

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._check_duplicates(node)
        self._flatten(node)
        merged = self._merged.get(id(node), ())
        if merged and not self._in_alias:
            self._outer_alias = self._mark(node)  # the mapping that merges is where it happens
        result: dict[Any, Any] = {}
        for pair in node.value:
            key_node, value_node = pair
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, "a mapping key must be a plain value, not a list or mapping", None)
                continue
            key = self.scalar(key_node)
            self.source_map.keys[(*path, key)] = self._mark(key_node)
            copied = id(pair) in merged  # `<<: *anchor` copies values in: an alias use
            self._in_alias += copied
            try:
                result[key] = self.value(value_node, (*path, key))
            finally:
                self._in_alias -= copied
        return result

    def _flatten(self, node: MappingNode) -> None:
        """Resolve ``<<`` merge keys in place, as PyYAML does, but keep each key once.

        PyYAML appends every merged pair, so mappings that merge mappings that merge ...
        grow exponentially before a single value is built. Keeping one pair per key
        (the first position, the last value: what a dict makes of them anyway) bounds a
        flattened mapping by the keys written in the file; ``mapping`` then counts the
        merged pairs against the alias budget.
        """
        if id(node) in self._flattened:
            return
        self._flattened.add(id(node))
        merged: list[tuple[Node, Node]] = []
        own: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in reversed(sources):  # the first mapping of a merge list wins: take it last
                if not isinstance(source, MappingNode):
                    self._problem(source, "a merge key (<<) takes a mapping or a list of mappings", None)
                    continue
                self._flatten(source)
                merged.extend(source.value)
        if len(own) != len(node.value):
            node.value = _last_value_wins([*merged, *own])
            self._merged[id(node)] = {id(pair) for pair in merged}

    def _check_duplicates(self, node: MappingNode) -> None:
        """YAML says keys are unique; PyYAML silently keeps the last one. We say so."""
        seen: dict[Any, Node] = {}
        for key_node, _ in _own_pairs(node):
            key = self.scalar(key_node)
            first = seen.setdefault(key, key_node)
            if first is not key_node:
                self._problem(key_node, f"duplicate key {key!r}", f"first at line {self._mark(first).line}")

    def _mark(self, node: Node) -> Mark:
        start = node.start_mark
        return Mark(start.line + 1 + self.offset, start.column + 1)

    def _problem(self, node: Node, message: str, hint: str | None) -> None:
        mark = self._mark(node)
        self.problems.append(Problem(self.source_map.file, mark.line, mark.column, None, message, hint))

    def _stop(self, where: Node | Mark, message: str, hint: str | None) -> None:
        """A limit is reached: stop building at once (going on is what the limit prevents)."""
        mark = where if isinstance(where, Mark) else self._mark(where)
        raise WorkflowFileError([Problem(self.source_map.file, mark.line, mark.column, None, message, hint)])


def _last_value_wins(pairs: list[tuple[Node, Node]]) -> list[tuple[Node, Node]]:
    """One pair per scalar key: at its first position, with its last value."""
    where: dict[tuple[str, Any], int] = {}
    result: list[tuple[Node, Node]] = []
    for pair in pairs:
        key_node = pair[0]
        if isinstance(key_node, ScalarNode):
            identity = (key_node.tag, key_node.value)
            index = where.get(identity)
            if index is not None:
                result[index] = pair
                continue
            where[identity] = len(result)
        result.append(pair)
    return result


def _own_pairs(node: MappingNode) -> Iterator[tuple[ScalarNode, Node]]:
    """The scalar-keyed pairs written in ``node`` itself (merge keys excluded)."""
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE:
            yield key_node, value_node
