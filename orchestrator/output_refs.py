"""Validate-time checks of ``steps.<id>.output.<field>`` against the tool's declared output.

``${{ steps.disk.outpt.stdout }}`` or ``${{ steps.disk.output.stdot }}`` would otherwise
validate and fail halfway through a run. Tools declare their return type; expressions see
it as plain JSON data (``orchestrator.sandbox.plain_data``), so a reference is followed
through the return type's JSON Schema in serialization mode (``properties``, ``$defs``/
``$ref``, ``anyOf`` for optional values, ``items`` for lists).

Only what is knowable is checked: literal attribute and key chains rooted at
``steps.<id>``. Anything open stops the check without a complaint: a tool without a
declared return type, ``Any``, a ``dict``, a computed key, a method call (``.strip()``),
a ``default`` filter or an ``is defined`` test (the author expects the key may be missing).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from jinja2 import nodes

from .sandbox import SANDBOX

if TYPE_CHECKING:
    from tools import ToolRegistry

    from .expressions import Expression

__all__ = ["output_reference_problems"]

#: The fields of ``steps.<id>`` in an expression's scope (see the scheduler's scope).
STEP_FIELDS = ("output", "status", "error")
#: Filters and tests that say "this key may be missing", so a missing key is not a typo.
_MAY_BE_MISSING_FILTERS = frozenset({"default", "d"})
_MAY_BE_MISSING_TESTS = frozenset({"defined", "undefined"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: A key we cannot know (a computed index); the check stops there.
_UNKNOWN = object()

Key = str | int | object


def output_reference_problems(
    field: str, expression: Expression, steps: Mapping[str, tuple[str, bool]], tools: ToolRegistry
) -> list[str]:
    """Problems with the ``steps.*`` references of ``expression`` (in ``field``, e.g. ``args.url``).

    ``steps`` maps each step id of the graph to its tool's name and whether it fans out
    (its output is then the list of the tool's outputs).
    """
    problems: list[str] = []
    for keys in _step_chains(expression.source):
        step_id = keys[0]
        if not isinstance(step_id, str) or step_id not in steps or len(keys) < 2:
            continue
        problem = _check(keys, steps[step_id], tools)
        if problem is not None:
            problems.append(f"{field}: {problem}")
    return problems


def _check(keys: list[Key], step: tuple[str, bool], tools: ToolRegistry) -> str | None:
    chain = _chain_text(keys[:2])
    if keys[1] not in STEP_FIELDS:
        if keys[1] is _UNKNOWN:
            return None
        close = _close(keys[1], STEP_FIELDS)
        hint = (
            f"did you mean {_chain_text([keys[0], close])!r}?" if close else "steps.<id>.output is the result"
        )
        return f"{chain}: a step has only output, status and error ({hint})"
    if keys[1] != "output" or len(keys) < 3:
        return None
    tool_name, fans_out = step
    if tool_name not in tools:
        return None
    schema = tools.get(tool_name).output_schema
    if schema is None:
        return None
    if fans_out:  # its output is the list of the items' outputs
        items = {k: v for k, v in schema.items() if k != "$defs"}
        schema = {"type": "array", "items": items, "$defs": schema.get("$defs", {})}
    return _follow(schema, keys, tool_name)


def _follow(root: dict[str, Any], keys: list[Key], tool_name: str) -> str | None:
    """Walk ``keys[2:]`` through ``root``; a message at the first key that cannot exist."""
    candidates = _variants(root, root)
    for depth in range(2, len(keys)):
        key = keys[depth]
        if key is _UNKNOWN:
            return None
        following: list[dict[str, Any]] = []
        fields: list[str] = []
        for schema in candidates:
            child = _child(schema, key)
            if child is _OPEN:
                return None
            if isinstance(child, dict):
                following.extend(_variants(child, root))
            else:
                fields.extend(name for name in schema.get("properties", {}) if name not in fields)
        if not following:
            return _missing(keys, depth, candidates, fields, tool_name)
        candidates = following
    return None


def _missing(
    keys: list[Key], depth: int, candidates: list[dict[str, Any]], fields: list[str], tool_name: str
) -> str:
    key = keys[depth]
    title = next((s["title"] for s in candidates if isinstance(s.get("title"), str)), None)
    owner = f"the output of tool {tool_name!r}" if depth == 2 else _chain_text(keys[:depth])
    if title:
        owner += f" ({title})"
    if not isinstance(key, str):
        return f"{_chain_text(keys[: depth + 1])}: {owner} is not a list"
    close = _close(key, fields)
    hint = f"did you mean {close!r}?" if close else f"its fields: {', '.join(fields) or 'none'}"
    return f"{_chain_text(keys[: depth + 1])}: {owner} has no field {key!r} ({hint})"


#: ``_child``'s answer when the schema does not say (any key might exist).
_OPEN = object()


def _child(schema: dict[str, Any], key: Key) -> dict[str, Any] | object | None:
    """The schema of ``schema[key]``, ``None`` if it cannot exist, ``_OPEN`` if unknown."""
    kind = schema.get("type")
    if kind == "array" or (kind is None and "items" in schema):
        if not isinstance(key, int):
            return _OPEN  # a list's methods (count, index) or a mistake we cannot name
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            if key < len(prefix):
                item = prefix[key]
                return item if isinstance(item, dict) else _OPEN
            if schema.get("items") is False:
                return None
        items = schema.get("items")
        return items if isinstance(items, dict) else _OPEN
    properties = schema.get("properties")
    if kind == "object" or isinstance(properties, dict):
        if not isinstance(key, str) or "patternProperties" in schema:
            return _OPEN
        if isinstance(properties, dict) and key in properties:
            child = properties[key]
            return child if isinstance(child, dict) else _OPEN
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return extra
        if extra is False or (extra is None and isinstance(properties, dict)):
            return None
        return _OPEN
    return _OPEN  # scalars (methods such as .strip), unions of types, an empty schema


def _variants(schema: dict[str, Any], root: dict[str, Any], depth: int = 0) -> list[dict[str, Any]]:
    """The alternatives ``schema`` stands for: ``$ref`` resolved, ``anyOf`` split, null dropped."""
    if depth > 20:  # a recursive model: stop following, say nothing
        return [{}]
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        if target is None:
            return [{}]
        siblings = {k: v for k, v in schema.items() if k not in ("$ref", "description", "title")}
        return _variants({**target, **siblings}, root, depth + 1)
    for union in ("anyOf", "oneOf"):
        members = schema.get(union)
        if isinstance(members, list):
            found = [v for m in members if isinstance(m, dict) for v in _variants(m, root, depth + 1)]
            found = [v for v in found if v.get("type") != "null"]
            return found or [{}]
    every = schema.get("allOf")
    if isinstance(every, list) and len(every) == 1 and isinstance(every[0], dict):
        return _variants(every[0], root, depth + 1)
    return [schema]


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any] | None:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, dict) else None


def _close(name: object, options: tuple[str, ...] | list[str]) -> str | None:
    if not isinstance(name, str):
        return None
    found = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return found[0] if found else None


def _chain_text(keys: list[Key]) -> str:
    text = "steps"
    for key in keys:
        if isinstance(key, str) and _IDENTIFIER.match(key):
            text += f".{key}"
        elif key is _UNKNOWN:
            text += "[…]"
        else:
            text += f"[{key!r}]"
    return text


def _step_chains(source: str) -> Iterator[list[Key]]:
    """The key chain after ``steps`` of every outermost attribute/item chain in ``source``.

    The last key is dropped when it is called (a method), defaulted or tested for being
    defined; everything after a computed key is unknown.
    """
    try:
        tree = SANDBOX.parse(source)
    except Exception:  # the engine reports unparsable expressions with its own message
        return
    parent: dict[int, nodes.Node] = {}
    for node in tree.find_all(nodes.Node):
        for child in node.iter_child_nodes():
            parent[id(child)] = node
    chains = [n for n in tree.find_all((nodes.Getattr, nodes.Getitem))]
    inner = {id(n.node) for n in chains if isinstance(n, (nodes.Getattr, nodes.Getitem))}
    for outer in chains:
        if id(outer) in inner:
            continue
        keys = _keys(outer)
        if keys is None:
            continue
        above = parent.get(id(outer))
        if (
            (isinstance(above, nodes.Call) and above.node is outer)
            or (
                isinstance(above, nodes.Filter)
                and above.node is outer
                and above.name in _MAY_BE_MISSING_FILTERS
            )
            or (isinstance(above, nodes.Test) and above.node is outer and above.name in _MAY_BE_MISSING_TESTS)
        ):
            keys = keys[:-1]
        yield keys


def _keys(node: nodes.Node) -> list[Key] | None:
    """``steps.a.output.x[0]`` → ``['a', 'output', 'x', 0]``; ``None`` if not rooted at ``steps``."""
    keys: list[Key] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
            keys.append(node.arg.value)
        else:
            keys = [_UNKNOWN] * len(keys)  # everything after a computed key is unknown
            keys.append(_UNKNOWN)
        node = node.node
    if not (isinstance(node, nodes.Name) and node.name == "steps"):
        return None
    keys.reverse()
    return keys
