"""The sandbox every ``${{ … }}`` expression runs in: plain data, pure operations, bounded cost.

Expressions come from places we do not trust: LLM plans, runbooks from a wiki, workflow
files from a colleague, and they read tool outputs that an attacker may shape. So the
sandbox is an allowlist, not Jinja's default denylist:

- **Plain data only.** ``plain_data`` turns whatever a tool returned (pydantic models,
  dataclasses, tuples…) into JSON-like dicts, lists, strings, numbers, booleans and null
  before an expression can see it. A pydantic model in scope would expose classmethods
  such as ``parse_raw(..., proto='pickle')``; a dict exposes nothing.
- **An allowlist of methods.** Attributes resolve to mapping keys; the only callable
  attributes are a short list of pure ``str``/``list``/``dict`` methods. Nothing reachable
  can load, import, open or execute.
- **An allowlist of filters and globals** (``range`` and ``dict``); no statements
  (``${% … %}``) at all, checked on the syntax tree.
- **Bounded cost.** Operators that grow values (``*``, ``**``, ``+``, ``%``) check the size
  of what they would build first; a rendered value has a size cap; the whole evaluation
  has a deadline checked at every operation; the optimizer is off, so nothing is computed
  at compile (``validate``) time; deep nesting becomes an ``ExpressionError``, not a
  ``RecursionError``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from itertools import islice
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
from jinja2.tests import TESTS as DEFAULT_TESTS
from pydantic_core import to_jsonable_python

from .errors import ExpressionError

__all__ = [
    "MAX_BUILT_ITEMS",
    "MAX_EXPRESSION_CHARS",
    "MAX_INT_BITS",
    "MAX_RESULT_CHARS",
    "SANDBOX",
    "TIME_LIMIT",
    "check_statements",
    "evaluation",
    "plain_data",
    "plain_result",
]

#: Longest expression source we compile (one ``${{ … }}`` string, text included).
MAX_EXPRESSION_CHARS = 64_000
#: Most characters (or items) a repetition such as ``'-' * 40`` may build. Legitimate
#: expressions repeat a separator, not a megabyte.
MAX_BUILT_ITEMS = 1_000_000
#: Most characters a rendered template, or a string built by ``+``, may hold. Generous:
#: passing one step's 10 MB output to the next is legitimate.
MAX_RESULT_CHARS = 32_000_000
#: Largest integer an arithmetic operator may produce (``9 ** (9 ** 9)`` is refused).
MAX_INT_BITS = 4096
#: Seconds one evaluation may take, checked at every operator, call and lookup.
TIME_LIMIT = 2.0

# Pure methods of plain data, by type. Everything else (format, ljust, center, zfill,
# expandtabs, encode, copy, pop…) is refused: some build unbounded strings, some mutate.
_STR_METHODS = frozenset(
    {
        "capitalize", "casefold", "count", "endswith", "find", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper",
        "lower", "lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rindex",
        "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
        "swapcase", "title", "upper", "join",
    }
)  # fmt: skip
_SAFE_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    list: frozenset({"count", "index"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "items", "keys", "values"}),
    range: frozenset({"count", "index"}),
}
_ALL_METHODS = frozenset().union(*_SAFE_METHODS.values())
_SAFE_FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby",
        "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
        "reject", "rejectattr", "reverse", "round", "select", "selectattr", "sort",
        "string", "sum", "title", "trim", "truncate", "unique", "upper", "urlencode",
        "wordcount",
    }
)  # fmt: skip
# `callable` and `test` would let an expression probe what is callable; the rest are pure.
_SAFE_TESTS = frozenset(DEFAULT_TESTS) - {"callable", "test", "filter"}
# printf-style width or precision: `'%999999999s' % x` would build a gigabyte.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")

_deadline: ContextVar[float] = ContextVar("stepweave_expression_deadline", default=math.inf)


def plain_data(value: Any) -> Any:
    """``value`` as JSON-like data: dicts, lists, str, int, float, bool, None.

    Pydantic models and dataclasses become dicts, tuples and sets lists; anything with no
    JSON form becomes its ``repr`` string. This is what expressions see of tool outputs
    and inputs, so no object with methods ever enters the sandbox.
    """
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    try:
        return to_jsonable_python(value, fallback=repr, bytes_mode="utf8", serialize_unknown=False)
    except Exception:  # bytes that are not UTF-8, odd __iter__... still data, as text
        return repr(value)


def plain_result(value: Any) -> Any:
    """An expression's value as plain data: lazy sequences (``map``, ``range``) become lists."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        raise ExpressionError(f"the value is the method {name!r}, not data (call it, or use a key)")
    if isinstance(value, (Iterator, range, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
        items = list(islice(value, MAX_BUILT_ITEMS + 1))
        _check_built("the result", len(items), MAX_BUILT_ITEMS)
        value = items
    return plain_data(value)


class evaluation:
    """Start the deadline of one evaluation (nested evaluations share the outer one)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _deadline.set(min(_deadline.get(), time.monotonic() + TIME_LIMIT))

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def _check_time() -> None:
    if time.monotonic() > _deadline.get():
        raise ExpressionError(f"expression took longer than {TIME_LIMIT:g}s")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple)) else None


def _check_built(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise ExpressionError(f"{what} would build {size:,} items; the limit is {limit:,}")


def _check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(f"integer result exceeds {MAX_INT_BITS} bits")
    return value


def _repeat(left: Any, right: Any) -> Any:
    for seq, times in ((left, right), (right, left)):
        size = _size(seq)
        if size is not None and isinstance(times, int):
            _check_built("repetition", size * max(times, 0), MAX_BUILT_ITEMS)
    if isinstance(left, int) and isinstance(right, int):
        _check_built_bits(left.bit_length() + right.bit_length())
    return _check_int(left * right)


def _check_built_bits(bits: int) -> None:
    if bits > MAX_INT_BITS + 1:
        raise ExpressionError(f"integer result exceeds {MAX_INT_BITS} bits")


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        _check_built_bits(int(right * math.log2(abs(left))))
    return _check_int(left**right)


def _add(left: Any, right: Any) -> Any:
    a, b = _size(left), _size(right)
    if a is not None and b is not None:
        _check_built("concatenation", a + b, MAX_RESULT_CHARS)
    return left + right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        for match in _PERCENT_SPEC.finditer(left):
            for part in match.groups():
                if part == "*" or (part is not None and int(part) > 1000):
                    raise ExpressionError("printf-style width or precision above 1000 is not allowed")
    return left % right


def _floordiv(left: Any, right: Any) -> Any:
    return left // right


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": _repeat,
    "**": _power,
    "+": _add,
    "%": _modulo,
    "//": _floordiv,
}


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_text, new_text = str(value), str(old), str(new)
    hits = text.count(old_text) if old_text else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    _check_built("replace", len(text) + hits * max(len(new_text) - len(old_text), 0), MAX_RESULT_CHARS)
    return text.replace(old_text, new_text) if count is None else text.replace(old_text, new_text, count)


def _tojson(value: Any, indent: int | None = None) -> str:
    # Jinja's own escapes <, >, & and ' for HTML; we render commands and JSON, not pages.
    return json.dumps(plain_data(value), ensure_ascii=False, indent=min(indent, 8) if indent else None)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every hook turned into an allowlist and a budget."""

    intercepted_binops = frozenset(_BINOPS)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_time()
        # Results are JSON-like data: `output.items` means the key "items", not dict.items.
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            if type(obj) is not dict:
                return self.undefined(obj=obj, name=attribute)
        return self._method(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_time()
        try:
            return obj[argument]
        except (TypeError, LookupError):
            pass
        except Exception as exc:  # an object with a hostile __getitem__: refuse it
            raise ExpressionError(f"cannot index {type(obj).__name__}: {exc}") from None
        if isinstance(argument, str):
            return self._method(obj, argument)
        return self.undefined(obj=obj, name=argument)

    def _method(self, obj: Any, name: str) -> Any:
        if name in _SAFE_METHODS.get(type(obj), ()):
            return getattr(obj, name)
        if hasattr(type(obj), name) or hasattr(obj, name):
            # Exists but is not ours to offer: say so, rather than "undefined".
            return self.unsafe_undefined(obj, name)
        return self.undefined(obj=obj, name=name)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr in _SAFE_METHODS.get(type(obj), ())

    def is_safe_callable(self, obj: Any) -> bool:
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if owner is not None and name in _SAFE_METHODS.get(type(owner), ()):
            return True
        return obj is safe_range or obj is dict

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_time()
        if isinstance(__obj, Undefined):
            __obj._fail_with_undefined_error()  # noqa: SLF001 - raises as jinja2 itself does
        if not __self.is_safe_callable(__obj):
            name = getattr(__obj, "__name__", type(__obj).__name__)
            raise SecurityError(f"{name!r} is not callable in an expression")
        return __context.call(__obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        return _BINOPS[operator](left, right)


def _finalize(value: Any) -> Any:
    # Called on every ${{ }} inside a larger string, so each piece is bounded on its own.
    _check_time()
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        raise ExpressionError(f"the value is the method {name!r}, not data (call it, or use a key)")
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, default=repr)
    if isinstance(value, str) and len(value) > MAX_RESULT_CHARS:
        raise ExpressionError(
            f"rendered value has {len(value):,} characters; the limit is {MAX_RESULT_CHARS:,}"
        )
    return value


SANDBOX = _Sandbox(
    variable_start_string="${{",
    variable_end_string="}}",
    # Statements are not part of the language (check_statements refuses them); their
    # delimiters are still set to something nobody types by accident, because a
    # workflow's text (shell snippets, JSON) may well contain "{%" or "{#".
    block_start_string="${%",
    block_end_string="%}",
    comment_start_string="${#",
    comment_end_string="#}",
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    # No constant folding: `9 ** (9 ** 9)` must not be computed while compiling.
    optimized=False,
    finalize=_finalize,
)
SANDBOX.globals.clear()
SANDBOX.globals.update({"range": safe_range, "dict": dict})
SANDBOX.filters = {name: DEFAULT_FILTERS[name] for name in _SAFE_FILTERS}
SANDBOX.filters["replace"] = _replace
SANDBOX.filters["tojson"] = _tojson
SANDBOX.tests = {name: DEFAULT_TESTS[name] for name in _SAFE_TESTS}

_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.Expr, nodes.Helper)


def check_statements(source: str, tree: nodes.Template) -> None:
    """Refuse ``${% … %}`` statements: the language is expressions only."""
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            raise ExpressionError(
                f"{source!r}: statements (${{% {type(node).__name__.lower()} %}}) are not part of the "
                "expression language; use filters such as map, select and join on ${{ … }}"
            )
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{source!r}: {type(node).__name__} is not allowed in an expression")
        # A call to a method no plain value offers can only be an attack or a typo: say so
        # at validate time instead of at run time.
        called = node.node if isinstance(node, nodes.Call) else None
        if isinstance(called, nodes.Getattr) and called.attr not in _ALL_METHODS:
            raise ExpressionError(
                f"{source!r}: {called.attr!r} is not a method expressions may call (they see "
                "plain data; pure str/list/dict methods such as upper, split, get and keys are allowed)"
            )
