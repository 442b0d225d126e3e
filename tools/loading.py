"""Load ``@tool`` functions from the modules a user names (``--tools``): an import name,
like ``python -m``, or a path to a ``.py`` file."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from .errors import ToolDefinitionError
from .registry import ToolRegistry

__all__ = ["import_tools_module", "load_tools"]


def load_tools(specs: Sequence[str], into: ToolRegistry | None = None) -> ToolRegistry:
    """Every ``@tool`` of each module, registered in ``into`` (default: a new registry).

    A module may instead (or also) register functions for the built-in ``python`` tool
    with ``register_callable``. Raises ``ValueError`` naming the module when one cannot
    be imported, provides neither, or defines a tool whose name is already taken.
    """
    registry = ToolRegistry() if into is None else into
    if specs:
        # Imported here, and only with modules to load: tools.builtin itself imports the
        # tools package, and the python tool's module is not needed otherwise.
        from .builtin import registered_callables
    for spec in specs:
        callables = len(registered_callables())
        try:
            module = import_tools_module(spec)
            found = registry.register_module(module)
        except (ImportError, OSError, SyntaxError, ToolDefinitionError) as exc:
            raise ValueError(f"--tools {spec}: {type(exc).__name__}: {exc}") from exc
        if not found and len(registered_callables()) == callables:
            raise ValueError(
                f"--tools {spec}: the module defines no @tool functions and registers no "
                "callables for the python tool"
            )
    return registry


def import_tools_module(spec: str) -> ModuleType:
    """Import ``spec``: a ``.py`` path (loaded under a private module name) or a module name."""
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ImportError(f"no such file: {spec}")
        name = _private_module_name(path)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        # Registered before it runs (dataclasses and pydantic look their module up by
        # name), but never under its file name: a user's `tools.py` or `json.py` would
        # replace a package of the same name for everything imported after it.
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    # Like `python -m`: modules beside the user's files are importable by name.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(spec)


def _private_module_name(path: Path) -> str:
    """The module name a ``.py`` file is loaded under: its stem, made private and unique
    per file (two ``tools.py`` in different folders are two modules)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return f"_stepweave_user_{stem}_{digest}"
