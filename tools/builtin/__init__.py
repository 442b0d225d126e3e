"""Built-in tools: shell, http, sql, read_file, write_file, python, wait and approve.

Each is a ``Tool`` with a typed argument schema and a pydantic result model::

    from tools.builtin import builtin_registry
    registry = builtin_registry()          # a fresh ToolRegistry holding all of them

Permanent failures (bad arguments, a missing file, a refusal) raise
``ToolError(..., retryable=False)``; transient ones (network errors, 5xx, timeouts) are
retryable.
"""

from __future__ import annotations

from ..base import Tool
from ..registry import ToolRegistry
from ._approve import Approval, approve
from ._files import FILE_ROOT_ENV, FileContent, FileWritten, file_root, read_file, resolve_in_root, write_file
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

#: Every built-in tool, in a stable order.
BUILTIN_TOOLS: tuple[Tool, ...] = (shell, http, sql, read_file, write_file, python, wait, approve)


def builtin_registry() -> ToolRegistry:
    """A new ``ToolRegistry`` holding every built-in tool (add your own to it freely)."""
    return ToolRegistry(BUILTIN_TOOLS)
