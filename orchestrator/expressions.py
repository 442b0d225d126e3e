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

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import TemplateError

from .errors import ExpressionError
from .sandbox import MAX_EXPRESSION_CHARS, SANDBOX, check_statements, evaluation, plain_data, plain_result

__all__ = [
    "ROOT_NAMES",
    "CompiledValue",
    "Expression",
    "compile_expression",
    "compile_value",
    "contains_expression",
    "plain_data",
]

#: The names an expression may start from.
ROOT_NAMES = frozenset({"inputs", "steps", "item", "env"})

_OPEN = "${{"
_HYPHENATED = re.compile(r"steps\.(\w+(?:-\w+)+)")
_SINGLE = re.compile(r"^\s*\$\{\{(?P<body>.*)\}\}\s*$", re.DOTALL)


_ALLOWED_NAMES = ROOT_NAMES | frozenset(SANDBOX.globals)


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
            with evaluation():
                value = self._evaluate(scope)
                if isinstance(value, Undefined):
                    # jinja2 offers the message only through this attribute (or by raising).
                    message = value._undefined_message  # noqa: SLF001 - jinja2 API, no public one
                    raise ExpressionError(f"{self.source!r}: {message}")
                return plain_result(value)
        except ExpressionError as exc:
            if self.source in str(exc):
                raise
            raise ExpressionError(f"{self.source!r}: {exc}") from None
        except TemplateError as exc:
            raise ExpressionError(f"{self.source!r}: {exc}") from None
        except RecursionError:
            raise ExpressionError(f"{_short(self.source)}: nested too deeply to evaluate") from None
        except MemoryError:
            raise ExpressionError(f"{_short(self.source)}: ran out of memory while evaluating") from None
        except Exception as exc:  # a filter or operator failing on the data (TypeError...)
            raise ExpressionError(f"{self.source!r}: {type(exc).__name__}: {exc}") from None


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile a string holding one or more ``${{ … }}``; cached by source text."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(
            f"{_short(source)}: {len(source):,} characters; an expression string may have at most "
            f"{MAX_EXPRESSION_CHARS:,}"
        )
    try:
        # Jinja still folds some constants while compiling a template (a string with text
        # around its ${{ }}); the deadline and the sandbox's bounds apply to that too.
        with evaluation():
            return _compile_expression(source)
    except TemplateSyntaxError as exc:  # e.g. an unknown filter, found while analysing
        raise ExpressionError(f"cannot parse {source!r}: {exc.message}") from None
    except TemplateError as exc:  # a constant part that cannot work: ''.nope ~ 'x'
        raise ExpressionError(f"{source!r}: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"{_short(source)}: nested too deeply to parse") from None
    except MemoryError:
        raise ExpressionError(f"{_short(source)}: ran out of memory while parsing") from None


def _short(source: str, limit: int = 120) -> str:
    return repr(source if len(source) <= limit else source[: limit - 1] + "…")


def _compile_expression(source: str) -> Expression:
    tree = SANDBOX.parse(source)
    check_statements(source, tree)
    refs, roots = _analyse(source, tree)
    single = _SINGLE.match(source)
    if single and source.count(_OPEN) == 1:
        compiled = SANDBOX.compile_expression(single.group("body"), undefined_to_none=False)

        def evaluate(scope: Mapping[str, Any]) -> Any:
            return compiled(**scope)

        return Expression(source, refs, roots, True, evaluate)
    template = SANDBOX.from_string(tree)

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
