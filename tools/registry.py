"""``ToolRegistry``: the named set of tools a run may call."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from .base import Tool
from .errors import ToolDefinitionError, ToolNotFoundError

__all__ = ["ToolRegistry"]


class _Deferred:
    """A tool known by name whose module is imported when the tool is first needed."""

    __slots__ = ("load",)

    def __init__(self, load: Callable[[], Tool]) -> None:
        self.load = load


class ToolRegistry:
    """Tools by name. Accepts ``Tool`` objects or plain functions (wrapped with ``@tool``).

    A tool may also be registered by name with a loader (``register_deferred``): it is
    imported on first ``get`` or iteration. Commands that touch two tools of a workflow
    (``validate``) then do not import every built-in, with their result models and clients.
    """

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool | _Deferred] = {}
        for item in tools:
            self.register(item)

    @classmethod
    def coerce(cls, tools: ToolRegistry | Iterable[Tool | Callable[..., Any]] | None) -> ToolRegistry:
        """Return ``tools`` if it is a registry, else a new registry holding them."""
        if isinstance(tools, ToolRegistry):
            return tools
        return cls(tools or ())

    def register(self, item: Tool | Callable[..., Any], *, replace: bool = False) -> Tool:
        """Add a tool; a second tool with the same name is an error unless ``replace``."""
        tool_obj = item if isinstance(item, Tool) else Tool.from_function(item)
        existing = self._tools.get(tool_obj.name)
        if isinstance(existing, _Deferred):
            existing = self._load(tool_obj.name, existing)
        if existing is not None and existing is not tool_obj and not replace:
            raise ToolDefinitionError(
                f"a different tool named {tool_obj.name!r} is already registered "
                f"({existing.func.__module__}.{existing.func.__qualname__}); "
                "rename one with @tool(name=...)"
            )
        self._tools[tool_obj.name] = tool_obj
        return tool_obj

    def register_deferred(self, name: str, load: Callable[[], Tool]) -> None:
        """Register the tool called ``name``, made by ``load()`` when it is first needed."""
        if name in self._tools:
            raise ToolDefinitionError(f"a tool named {name!r} is already registered")
        self._tools[name] = _Deferred(load)

    def _load(self, name: str, deferred: _Deferred) -> Tool:
        tool_obj = deferred.load()
        if tool_obj.name != name:
            raise ToolDefinitionError(f"the tool deferred as {name!r} loaded as {tool_obj.name!r}")
        self._tools[name] = tool_obj
        return tool_obj

    def register_module(self, module: ModuleType | str) -> list[Tool]:
        """Register every ``Tool`` defined at the top level of ``module`` (a module or its name)."""
        if isinstance(module, str):
            module = importlib.import_module(module)
        # A module's top-level names, and the names its __all__ promises: a package that
        # exports its tools lazily (tools.builtin) has them only there until asked.
        values = [*vars(module).values(), *(getattr(module, name) for name in getattr(module, "__all__", ()))]
        found = list({id(value): value for value in values if isinstance(value, Tool)}.values())
        for item in found:
            self.register(item)
        return found

    def get(self, name: str) -> Tool:
        """The tool called ``name``; ``ToolNotFoundError`` suggests the closest name."""
        try:
            found = self._tools[name]
        except KeyError:
            raise ToolNotFoundError(self.unknown_message(name)) from None
        return self._load(name, found) if isinstance(found, _Deferred) else found

    def unknown_message(self, name: str) -> str:
        """An error message for an unknown tool name, with a suggestion when one is close."""
        close = difflib.get_close_matches(name, list(self._tools), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(sorted(self._tools)) or "none registered"
        return f"unknown tool {name!r}{hint}; known tools: {known}"

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter([self.get(name) for name in list(self._tools)])

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def openai_schemas(self) -> list[dict[str, Any]]:
        """Every tool in OpenAI's function-calling format (for LLM planners)."""
        return [t.openai_schema() for t in self]
