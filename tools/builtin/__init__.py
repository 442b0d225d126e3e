"""Built-in tools: shell, http, sql, read_file, write_file, python, wait and approve.

Each is a ``Tool`` with a typed argument schema and a pydantic result model::

    from tools.builtin import builtin_registry
    registry = builtin_registry()          # a fresh ToolRegistry holding all of them

Permanent failures (bad arguments, a missing file, a refusal) raise
``ToolError(..., retryable=False)``; transient ones (network errors, 5xx, timeouts) are
retryable.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from ..base import Tool
from ..registry import ToolRegistry

if TYPE_CHECKING:
    from ._approve import Approval, approve
    from ._files import (
        FILE_ROOT_ENV,
        FileContent,
        FileWritten,
        file_root,
        read_file,
        resolve_in_root,
        write_file,
    )
    from ._http import HttpResponse, http
    from ._http_guard import HTTP_ALLOW_ENV
    from ._python import PythonResult, python, register_callable, registered_callables, unregister_callable
    from ._shell import DEFAULT_ENV_PASSTHROUGH, ShellResult, shell
    from ._sql import SqlResult, sql
    from ._wait import WaitResult, wait

__all__ = [
    "BUILTIN_TOOLS",
    "DEFAULT_ENV_PASSTHROUGH",
    "FILE_ROOT_ENV",
    "HTTP_ALLOW_ENV",
    "Approval",
    "FileContent",
    "FileWritten",
    "HttpResponse",
    "PythonResult",
    "ShellResult",
    "SqlResult",
    "WaitResult",
    "approve",
    "builtin_registry",
    "file_root",
    "http",
    "python",
    "read_file",
    "register_callable",
    "registered_callables",
    "resolve_in_root",
    "shell",
    "sql",
    "unregister_callable",
    "wait",
    "write_file",
]

#: Every built-in tool's name and module, in a stable order. Each module is imported when
#: its tool (or one of its names) is first used: most commands touch a few of them.
_TOOL_MODULES = {
    "shell": "._shell",
    "http": "._http",
    "sql": "._sql",
    "read_file": "._files",
    "write_file": "._files",
    "python": "._python",
    "wait": "._wait",
    "approve": "._approve",
}
_OTHER_NAMES = {
    "Approval": "._approve",
    "FILE_ROOT_ENV": "._files",
    "FileContent": "._files",
    "FileWritten": "._files",
    "file_root": "._files",
    "resolve_in_root": "._files",
    "HttpResponse": "._http",
    "HTTP_ALLOW_ENV": "._http_guard",
    "PythonResult": "._python",
    "register_callable": "._python",
    "registered_callables": "._python",
    "unregister_callable": "._python",
    "DEFAULT_ENV_PASSTHROUGH": "._shell",
    "ShellResult": "._shell",
    "SqlResult": "._sql",
    "WaitResult": "._wait",
}


def _builtin(name: str) -> Tool:
    found = getattr(importlib.import_module(_TOOL_MODULES[name], __name__), name)
    assert isinstance(found, Tool)
    return found


def __getattr__(name: str) -> Any:
    if name == "BUILTIN_TOOLS":
        return tuple(_builtin(tool_name) for tool_name in _TOOL_MODULES)
    module = _TOOL_MODULES.get(name) or _OTHER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once imported, a plain module attribute
    return value


def builtin_registry() -> ToolRegistry:
    """A new ``ToolRegistry`` holding every built-in tool (add your own to it freely).

    The tools are registered by name; each one's module is imported when it is first used.
    """
    registry = ToolRegistry()
    for name in _TOOL_MODULES:
        registry.register_deferred(name, functools.partial(_builtin, name))
    return registry
