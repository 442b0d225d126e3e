"""The ``${{ … }}`` expression language: references between steps and conditions.

Jinja2 expressions inside GitHub-Actions-style delimiters, evaluated in Jinja2's immutable
sandbox (never ``eval``). Names in scope: ``inputs``, ``steps`` (``steps.<id>.output``,
``.status``, ``.error``), ``item`` (inside a fan-out) and ``env`` (only where allowed).

A string that is exactly one ``${{ … }}`` yields the native value (a list stays a list);
any other string containing expressions renders to a string. The step ids an expression
depends on are read from its parsed syntax tree, never found by substring search.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import ExpressionError

__all__ = [
    "ROOT_NAMES",
    "CompiledValue",
    "Expression",
    "compile_expression",
    "compile_value",
    "contains_expression",
]

#: The names an expression may start from.
ROOT_NAMES = frozenset({"inputs", "steps", "item", "env"})

_OPEN = "${{"
_HYPHENATED = re.compile(r"steps\.(\w+(?:-\w+)+)")
_SINGLE = re.compile(r"^\s*\$\{\{(?P<body>.*)\}\}\s*$", re.DOTALL)


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with keys before attributes on mappings.

    Results are JSON-like data, so ``output.items`` must mean the key "items", not the
    ``dict.items`` method Jinja would otherwise find first.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _Environment(
    variable_start_string=_OPEN,
    variable_end_string="}}",
    # Statements and comments get delimiters nobody types by accident: a workflow's text
    # (shell snippets, JSON) may well contain "{%" or "{#".
    block_start_string="${%",
    block_end_string="%}",
    comment_start_string="${#",
    comment_end_string="#}",
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)
for _unused in ("lipsum", "cycler", "joiner"):
    _ENV.globals.pop(_unused, None)
_ALLOWED_NAMES = ROOT_NAMES | frozenset(_ENV.globals)


def contains_expression(value: str) -> bool:
    return _OPEN in value


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled ``${{ … }}`` template: its source, the step ids and root names it uses."""

    source: str
    refs: frozenset[str]
    roots: frozenset[str]
    native: bool
    _evaluate: Callable[[Mapping[str, Any]], Any]

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        """Evaluate against ``scope`` (``steps``, ``inputs``, ...); raise ``ExpressionError``."""
        try:
            value = self._evaluate(scope)
        except ExpressionError:
            raise
        except TemplateError as exc:
            raise ExpressionError(f"{self.source!r}: {exc}") from None
        except Exception as exc:  # a filter or operator failing on the data (TypeError...)
            raise ExpressionError(f"{self.source!r}: {type(exc).__name__}: {exc}") from None
        if isinstance(value, Undefined):
            raise ExpressionError(f"{self.source!r}: {value._undefined_message}")
        return value


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile a string holding one or more ``${{ … }}``; cached by source text."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"cannot parse {source!r}: {exc.message}") from None
    try:
        refs, roots = _analyse(source, tree)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found while analysing
        raise ExpressionError(f"cannot parse {source!r}: {exc.message}") from None
    single = _SINGLE.match(source)
    if single and source.count(_OPEN) == 1:
        body = single.group("body")
        try:
            compiled = _ENV.compile_expression(body, undefined_to_none=False)
        except TemplateSyntaxError as exc:
            raise ExpressionError(f"cannot parse {source!r}: {exc.message}") from None

        def evaluate(scope: Mapping[str, Any]) -> Any:
            return compiled(**scope)

        return Expression(source, refs, roots, True, evaluate)
    template = _ENV.from_string(tree)

    def render(scope: Mapping[str, Any]) -> Any:
        return template.render(scope)

    return Expression(source, refs, roots, False, render)


def _analyse(source: str, tree: nodes.Template) -> tuple[frozenset[str], frozenset[str]]:
    """Step ids referenced through ``steps`` and the root names used, from the AST."""
    names = meta.find_undeclared_variables(tree)
    unknown = sorted(names - _ALLOWED_NAMES)
    if unknown:
        hint = "steps.fetch.output"
        hyphenated = _HYPHENATED.search(source)
        if hyphenated:
            # Jinja reads steps.check-disk as "steps.check minus disk".
            hint = f"steps[{hyphenated.group(1)!r}].output for an id containing '-'"
        raise ExpressionError(
            f"{source!r}: unknown name {unknown[0]!r}; expressions start from "
            f"{', '.join(sorted(ROOT_NAMES))} (for example {hint})"
        )
    refs: set[str] = set()
    consumed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "steps"):
            continue
        consumed.add(id(target))
        if isinstance(node, nodes.Getattr):
            refs.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            refs.add(node.arg.value)
        else:
            raise ExpressionError(
                f"{source!r}: steps[...] needs a literal step id, so the dependency is known before the run"
            )
    for name in tree.find_all(nodes.Name):
        if name.name == "steps" and id(name) not in consumed:
            raise ExpressionError(f"{source!r}: 'steps' must be followed by a step id (steps.<id>.output)")
    return frozenset(refs), frozenset(names & ROOT_NAMES)


@dataclass(frozen=True, slots=True)
class CompiledValue:
    """A JSON-like value (dicts, lists, strings...) with its expressions compiled.

    ``render(scope)`` returns the value with every expression evaluated; a value without
    expressions is returned as is, at no cost.
    """

    raw: Any
    refs: frozenset[str]
    roots: frozenset[str]
    expressions: tuple[Expression, ...]
    _render: Callable[[Mapping[str, Any]], Any] | None

    @property
    def is_constant(self) -> bool:
        return self._render is None

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self._render is None:
            return self.raw
        return self._render(scope)


_CONSTANT = CompiledValue(None, frozenset(), frozenset(), (), None)


def compile_value(value: Any) -> CompiledValue:
    """Compile every ``${{ … }}`` inside ``value`` (recursing into dicts and lists)."""
    found: list[Expression] = []
    render = _compile(value, found)
    if render is None:
        if value is None:
            return _CONSTANT
        return CompiledValue(value, frozenset(), frozenset(), (), None)
    refs = frozenset().union(*(e.refs for e in found))
    roots = frozenset().union(*(e.roots for e in found))
    return CompiledValue(value, refs, roots, tuple(found), render)


def _compile(value: Any, found: list[Expression]) -> Callable[[Mapping[str, Any]], Any] | None:
    if isinstance(value, str):
        if _OPEN not in value:
            return None
        expr = compile_expression(value)
        found.append(expr)
        return expr.evaluate
    if isinstance(value, Mapping):
        parts = {key: _compile(item, found) for key, item in value.items()}
        if all(part is None for part in parts.values()):
            return None
        raw = dict(value)

        def render_mapping(scope: Mapping[str, Any]) -> Any:
            return {k: (raw[k] if f is None else f(scope)) for k, f in parts.items()}

        return render_mapping
    if isinstance(value, (list, tuple)):
        items = [_compile(item, found) for item in value]
        if all(part is None for part in items):
            return None
        raw_items = list(value)

        def render_list(scope: Mapping[str, Any]) -> Any:
            return [raw_items[i] if f is None else f(scope) for i, f in enumerate(items)]

        return render_list
    return None
