"""``mcp_servers:``: the MCP servers a workflow's steps call, by name.

```yaml
mcp_servers:
  notes: {command: [python, notes_server.py], env: {NOTES_DIR: /tmp/notes}}  # stdio
  search: {url: "http://127.0.0.1:8000/mcp"}                                 # streamable HTTP
steps:
  - {id: find, tool: notes.search, args: {query: disk}}
```

A step calls tool ``T`` of server ``S`` as ``tool: S.T``. The servers' tools are known only
once the servers run, so until then such a step's tool and arguments are taken on trust
(``pending_mcp_tools``); the runner starts the servers and checks the workflow again
with their tools before the first step starts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from tools import Tool, ToolRegistry

__all__ = ["McpServerEntry", "ServerName", "pending_mcp_tools"]

#: It prefixes the server's tools (``NAME.TOOL``), so no dot.
ServerName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]


class McpServerEntry(BaseModel):
    """How to reach one MCP server: ``command`` (argv, over stdio) or ``url`` (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: list[str] | None = Field(
        None,
        min_length=1,
        description="The server's argv, run without a shell (relative paths from the current directory).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables added to a minimal environment (HOME, PATH...).",
    )
    url: str | None = Field(
        None, description="The server's streamable HTTP endpoint, e.g. http://127.0.0.1:8000/mcp."
    )

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command: [argv...] (stdio) or url: http://... (streamable HTTP)")
        if self.url is not None:
            if urlsplit(self.url).scheme not in ("http", "https"):
                raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
            if self.env:
                raise ValueError("env applies to a command, not to a url")
        return self


def _never_called() -> Any:
    raise RuntimeError("an MCP tool placeholder is never called: the runner starts the server first")


class _PendingMcpTool(Tool):
    """Stands for a tool of a declared server that is not running yet: any arguments pass."""

    def check_arguments(self, args: Mapping[str, Any], dynamic: Collection[str] = ()) -> list[str]:
        return []


def _placeholder(name: str) -> Tool:
    model = create_model("pending_mcp_arguments", __config__=ConfigDict(extra="allow"))
    return _PendingMcpTool(
        func=_never_called,
        name=name,
        description="",
        args_model=model,
        return_type=Any,
        takes_context=False,
        is_async=False,
    )


def pending_mcp_tools(tools: ToolRegistry, servers: Collection[str], names: Collection[str]) -> ToolRegistry:
    """``tools`` plus a placeholder for each of ``names`` (tools steps call) that belongs to
    one of ``servers`` whose tools are not in ``tools`` (the server has not been started)."""
    started = {name.split(".", 1)[0] for name in tools.names if "." in name}
    pending = [
        name
        for name in dict.fromkeys(names)
        if name not in tools and name.split(".", 1)[0] in servers and name.split(".", 1)[0] not in started
    ]
    if not pending:
        return tools
    return ToolRegistry([*tools, *(_placeholder(name) for name in pending)])
