"""Errors of MCP tools; all are ``ToolError`` so a step that calls one fails the usual way::

    ToolError
    └── McpError                  an MCP server could not be used; names the server (and tool)
        ├── McpUnavailableError   the SDK is not installed (``pip install 'stepweave[mcp]'``)
        └── McpServerGone         the server could not start, or died or hung up during a call
                                  (retryable: the next attempt starts it again)

A tool that reports an error in its result (``isError``) fails its step with a plain
``McpError`` naming the server and the tool.
"""

from __future__ import annotations

from ..errors import ToolError

__all__ = ["McpError", "McpServerGone", "McpUnavailableError"]


class McpError(ToolError):
    """An MCP server or one of its tools failed."""


class McpUnavailableError(McpError, ImportError):
    """The ``mcp`` package (the official MCP SDK) is not installed."""

    retryable = False

    def __init__(self, message: str = "MCP servers need the MCP SDK: pip install 'stepweave[mcp]'") -> None:
        super().__init__(message)

    def __reduce__(self) -> tuple[type[McpUnavailableError], tuple[str]]:
        return (type(self), (str(self),))


class McpServerGone(McpError):
    """The server could not be started, or its connection ended (it died, or hung up)."""

    retryable = True
