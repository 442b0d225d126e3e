"""Load the tools an agent offers from modules named on its command line."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from tools import ToolRegistry

__all__ = ["load_tools"]


def load_tools(specs: Sequence[str]) -> ToolRegistry:
    """Every ``@tool`` of each module, given by import name or ``.py`` path.

    Raises ``ValueError`` naming the module when one cannot be imported or has no tools.
    """
    registry = ToolRegistry()
    for spec in specs:
        try:
            module = _import(spec)
        except (ImportError, OSError, SyntaxError) as exc:
            raise ValueError(f"--tools {spec}: {type(exc).__name__}: {exc}") from exc
        if not registry.register_module(module):
            raise ValueError(f"--tools {spec}: the module defines no @tool functions")
    return registry


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ImportError(f"no such file: {spec}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
        return module
    # Like `python -m`: modules beside the user's files are importable by name.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(spec)
