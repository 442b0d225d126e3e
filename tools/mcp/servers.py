"""``McpServers``: MCP servers' tools for the length of an ``async with`` block.

```python
async with McpServers([McpServer("notes", command=["python", "notes_server.py"])]) as servers:
    await Orchestrator(tools=[*my_tools, *servers.tools]).run(graph)
```

Entering starts every server (at the same time) and lists its tools; leaving closes the
sessions and ends the server processes. One block per run is the usual shape (the
workflow runner, ``stepweave ask --mcp``); a device agent keeps its servers for as long
as it runs. ``mcp_tools(name, command=[...])`` is the one-server shorthand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import McpError, McpUnavailableError
from .spec import McpServer
from .tool import McpTool

if TYPE_CHECKING:
    from mcp.types import CallToolResult
    from mcp.types import Tool as ListedTool

    from .session import McpSession

__all__ = ["McpServers", "mcp_tools"]


def _require_sdk() -> None:
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise McpUnavailableError() from None


class McpServers:
    """Sessions with MCP servers and their tools (``.tools``), while the block runs.

    Reusable, not reentrant: each ``async with`` starts the servers again.
    """

    def __init__(self, servers: Iterable[McpServer]) -> None:
        self.servers: tuple[McpServer, ...] = tuple(servers)
        names = [server.name for server in self.servers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"MCP server names must be unique: {', '.join(duplicates)}")
        self.tools: list[McpTool] = []
        self._sessions: dict[str, McpSession] = {}
        self._stack: AsyncExitStack | None = None

    @property
    def sessions(self) -> Mapping[str, McpSession]:
        """The session of each server, by name (while the block runs)."""
        return self._sessions

    async def __aenter__(self) -> McpServers:
        if self._stack is not None:
            raise RuntimeError("McpServers is already running: it is reusable, but not reentrant")
        _require_sdk()
        import anyio

        from .session import McpSession

        stack = AsyncExitStack()
        group = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        self._sessions = {server.name: McpSession(server, group) for server in self.servers}
        listings: dict[str, list[ListedTool]] = {}
        failures: list[McpError] = []

        async def start(session: McpSession) -> None:
            try:
                listings[session.server.name] = await session.list_tools()
            except McpError as exc:
                failures.append(exc)

        try:
            async with anyio.create_task_group() as starting:
                for session in self._sessions.values():
                    starting.start_soon(start, session)
            if failures:
                raise failures[0]
        except BaseException:
            await self._close()
            raise
        self.tools = [
            _to_tool(self._sessions[server.name], listed)
            for server in self.servers
            for listed in listings[server.name]
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        for session in self._sessions.values():
            session.close()
        stack, self._stack = self._stack, None
        if stack is not None:
            # Not handed the block's exception: the sessions' task group ends on its own
            # once every session stopped, and the block's error propagates unchanged.
            await stack.aclose()


def _to_tool(session: McpSession, listed: ListedTool) -> McpTool:
    async def call(name: str, arguments: dict[str, Any]) -> Any:
        return _plain_result(session.server.name, name, await session.call(name, arguments), listed)

    annotations = listed.annotations
    return McpTool.from_listing(
        session.server.name,
        listed.name,
        description=listed.description or (annotations.title if annotations else None),
        input_schema=listed.input_schema,
        output_schema=listed.output_schema,
        # Only the server's word makes a tool read-only; its absence means "may act".
        read_only=bool(annotations is not None and annotations.read_only_hint),
        call=call,
    )


def _plain_result(server: str, tool: str, result: CallToolResult, listed: ListedTool) -> Any:
    """The step's output as plain JSON data: the structured content when the tool declares
    an output schema, else its text (other content as JSON objects)."""
    from mcp.types import TextContent

    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if result.is_error:
        message = " ".join(texts).strip() or "the tool reported an error"
        raise McpError(f"MCP server {server!r}, tool {server}.{tool}: {message}")
    if listed.output_schema is not None:
        if result.structured_content is None:
            raise McpError(
                f"MCP server {server!r}, tool {server}.{tool}: no structured content, though the tool "
                "declares an output schema",
                retryable=False,
            )
        return result.structured_content
    if len(texts) == len(result.content):
        return "\n".join(texts)
    return [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]


@asynccontextmanager
async def mcp_tools(
    name: str,
    *,
    command: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    url: str | None = None,
) -> AsyncIterator[list[McpTool]]:
    """The tools of one MCP server while the block runs (the server is closed after it)::

    async with mcp_tools("notes", command=["python", "notes_server.py"]) as notes:
        await Orchestrator(tools=[*notes]).run(graph)
    """
    async with McpServers([McpServer(name, command=command, env=env or {}, url=url)]) as servers:
        yield servers.tools
