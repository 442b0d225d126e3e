"""Which inputs an expression reads (``inputs.host``, ``inputs['host']``), from its syntax tree.

The engine finds the *steps* an expression references; a workflow also knows its declared
inputs, so a misspelled ``inputs.hots`` can be a definition error instead of a failure
halfway through a run. Parsing only: nothing here is ever rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from orchestrator.sandbox import SANDBOX

from .yaml_source import Path

__all__ = ["input_references", "names_used"]


def input_references(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """``(path, input name)`` for every input read anywhere inside a JSON-like ``value``."""
    if isinstance(value, str):
        for name in sorted(_inputs_in(value)):
            yield path, name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from input_references(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from input_references(item, (*path, index))


def names_used(source: str) -> frozenset[str]:
    """The top-level names (``steps``, ``inputs``, ``item``…) an expression string uses."""
    tree = _parse(source)
    if tree is None:
        return frozenset()
    return frozenset(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load")


def _inputs_in(source: str) -> set[str]:
    tree = _parse(source)
    if tree is None:
        return set()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        if not (isinstance(node.node, nodes.Name) and node.node.name == "inputs"):
            continue
        if isinstance(node, nodes.Getattr):
            found.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            found.add(node.arg.value)
    return found


def _parse(source: str) -> nodes.Template | None:
    if "${{" not in source:
        return None
    try:
        # The engine's own environment: the same delimiters, so the same expressions.
        return SANDBOX.parse(source)
    # Reported by the engine, with its own message; a hostile expression nested thousands
    # deep must not crash the check that runs first.
    except (TemplateSyntaxError, RecursionError, MemoryError):
        return None
