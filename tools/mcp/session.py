"""One MCP server's session: started on demand, restarted after it died, closed on exit.

The SDK's ``Client`` is an async context manager holding a task group (and, over stdio,
the server process), so it must be entered and exited by one task. Each session
therefore lives in a task of its own, started in the owner's task group; tool calls from
any step use it, and a call that finds the connection gone marks the session dead, so
the next call (a retry) starts a new one. Closing sets the session's stop event and the
task leaves the ``Client`` block, which ends the server process (the SDK closes its
stdin, then terminates and kills it if it lingers).

Cancelling a call (a step's timeout, a cancelled run) cancels the SDK request, which
sends ``notifications/cancelled`` to the server before it returns.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import IO, TYPE_CHECKING, Any, TextIO, cast

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .errors import McpError, McpServerGone
from .spec import McpServer

if TYPE_CHECKING:
    from mcp import Client
    from mcp.types import CallToolResult
    from mcp.types import Tool as ListedTool

__all__ = ["McpSession"]

log = logging.getLogger("stepweave.mcp")


class McpSession:
    """The connection to one server, owned by a task group (see the module docstring)."""

    def __init__(self, server: McpServer, group: TaskGroup) -> None:
        self.server = server
        self._group = group
        self._client: Client | None = None
        self._stop: anyio.Event | None = None
        self._lock = anyio.Lock()
        self._errlog: IO[str] | None = None
        #: How many times the server was started (a restart after a death adds one).
        self.starts = 0

    async def _serve(self, stop: anyio.Event, *, task_status: TaskStatus[Client]) -> None:
        from mcp import Client

        started = False
        # The server's stderr goes to a file, not to our terminal (it would tear through
        # the live progress view): its last line explains a server that failed or died.
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
            self._errlog = errlog
            try:
                async with Client(_transport(self.server, errlog), client_info=_CLIENT_INFO()) as client:
                    started = True
                    task_status.started(client)
                    await stop.wait()
            except Exception:
                if not started:
                    raise
                # The server already died (its calls said so); leaving the Client block only
                # reaps what is left of it, and must not take the owner's task group down.
                log.debug("MCP server %s: closing after it ended", self.server.name, exc_info=True)

    def _said(self) -> str:
        """`` (it said: LAST LINE OF ITS STDERR)``, or nothing."""
        errlog = self._errlog
        if errlog is None or errlog.closed:
            return ""
        try:
            errlog.seek(0, os.SEEK_END)
            size = errlog.tell()
            errlog.seek(max(0, size - 4096))
            lines = [line.strip() for line in errlog.read().splitlines() if line.strip()]
        except (OSError, ValueError):
            return ""
        return f" (it said: {lines[-1][:300]})" if lines else ""

    async def _live(self) -> Client:
        async with self._lock:
            if self._client is not None:
                return self._client
            stop = anyio.Event()
            try:
                client: Client = await self._group.start(self._serve, stop)
            except Exception as exc:
                raise McpServerGone(
                    f"MCP server {self.server.describe()} could not be started: {_reason(exc)}{self._said()}"
                ) from exc
            self._client, self._stop = client, stop
            self.starts += 1
            return client

    def _drop(self, client: Client) -> None:
        """Forget a dead connection (once) and let its task reap it."""
        if self._client is client:
            self._client = None
            if self._stop is not None:
                self._stop.set()

    async def list_tools(self) -> list[ListedTool]:
        """Start the server if needed and list every tool (all pages)."""
        client = await self._live()
        tools: list[ListedTool] = []
        cursor: str | None = None
        try:
            while True:
                page = await client.list_tools(cursor=cursor)
                tools += page.tools
                cursor = page.next_cursor
                if cursor is None:
                    return tools
        except Exception as exc:
            self._drop(client)
            raise McpServerGone(
                f"MCP server {self.server.describe()}: listing its tools failed: {_reason(exc)}"
            ) from exc

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call ``tool``; a dead server is restarted first (a retry after it died)."""
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        client = await self._live()
        where = f"MCP server {self.server.name!r}, tool {self.server.name}.{tool}"
        try:
            return await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._drop(client)
                raise McpServerGone(
                    f"{where}: the server ended during the call ({exc.message}){self._said()}"
                ) from None
            raise McpError(f"{where}: {exc.message}") from None
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream) as exc:
            self._drop(client)
            raise McpServerGone(f"{where}: the connection failed during the call: {_reason(exc)}") from None
        except Exception as exc:  # the HTTP client's errors, a malformed answer
            self._drop(client)
            raise McpServerGone(f"{where}: {_reason(exc)}") from None

    def close(self) -> None:
        """Ask the session's task to end (the owner's task group then waits for it)."""
        self._client = None
        if self._stop is not None:
            self._stop.set()


def _transport(server: McpServer, errlog: IO[str]) -> Any:
    from mcp import StdioServerParameters, stdio_client

    if server.url is not None:
        return server.url
    command, *args = server.command
    params = StdioServerParameters(command=command, args=args, env=dict(server.env) or None)
    return stdio_client(params, cast(TextIO, errlog))


def _CLIENT_INFO() -> Any:
    from importlib.metadata import PackageNotFoundError, version

    from mcp.types import Implementation

    try:
        ours = version("stepweave")
    except PackageNotFoundError:
        ours = "0"
    return Implementation(name="stepweave", version=ours)


def _reason(exc: BaseException) -> str:
    """One line for an exception, looking inside exception groups (task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
