"""Tools as the planner prompt shows them: one compact signature line each, not full schemas.

A tool's JSON Schema is for validation (and for the response-format grammar, which gets
it whole); a model planning needs far less: what the tool does, its required arguments,
the few options that matter, and the shape of its output (so ``$t1.text`` is not a
guess). Measured against llama.cpp with a small model, the compact prompt (~400 tokens of
tools) produced valid plans far more often than full schemas (~2,400 tokens), and faster.

    http(url: string, method?: "GET"|"POST"|"PUT"|…) -> {status: integer, text: string, …}
"""

from __future__ import annotations

import re
from typing import Any

from tools import Tool

__all__ = ["signature", "summary"]

#: Optional arguments that tune how a call runs rather than what it does.
_KNOBS = re.compile(r"timeout|grace|max_|_bytes|encoding|retries|busy|limit|backoff|create_parents")
#: Optional arguments shown per tool; the rest are left to their defaults.
_MAX_OPTIONS = 3
#: Output fields shown per tool.
_MAX_FIELDS = 6


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str):
        return defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node


def type_of(node: Any, defs: dict[str, Any], depth: int = 0) -> str:
    """A short type: ``string``, ``list[number]``, ``"a"|"b"``, ``{x: number, …}``, ``any``."""
    node = _resolve(node, defs)
    if not isinstance(node, dict) or not node:
        return "any"
    if "enum" in node:
        values = [f'"{v}"' if isinstance(v, str) else str(v) for v in node["enum"]]
        return "|".join(values[:4]) + ("|…" if len(values) > 4 else "")
    for key in ("anyOf", "oneOf"):
        if key in node:
            branches = [b for b in node[key] if _resolve(b, defs).get("type") != "null"]
            return "|".join(dict.fromkeys(type_of(b, defs, depth) for b in branches)) or "null"
    kind = node.get("type")
    if kind == "array":
        return f"list[{type_of(node.get('items', {}), defs, depth + 1)}]"
    if kind == "object" or "properties" in node:
        properties = node.get("properties") or {}
        if not properties or depth > 0:
            return "object"
        fields = [f"{name}: {type_of(value, defs, depth + 1)}" for name, value in properties.items()]
        more = ", …" if len(fields) > _MAX_FIELDS else ""
        return "{" + ", ".join(fields[:_MAX_FIELDS]) + more + "}"
    return str(kind) if isinstance(kind, str) else "any"


def signature(tool: Tool) -> str:
    """``name(required: type, option?: type, …) -> output`` for the prompt."""
    schema = tool.parameters_schema
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    shown = [f"{name}: {type_of(node, defs)}" for name, node in properties.items() if name in required]
    options = [name for name in properties if name not in required and not _KNOBS.search(name)]
    shown += [f"{name}?: {type_of(properties[name], defs)}" for name in options[:_MAX_OPTIONS]]
    if len(properties) > len(shown):
        shown.append("…")
    returns = tool.return_schema
    output = type_of(returns, returns.get("$defs", {})) if isinstance(returns, dict) and returns else "any"
    return f"{tool.name}({', '.join(shown)}) -> {output}"


def summary(tool: Tool, limit: int = 160) -> str:
    """The first sentence of the tool's description, at most ``limit`` characters."""
    text = " ".join(tool.description.split())
    if not text:
        return ""
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"
