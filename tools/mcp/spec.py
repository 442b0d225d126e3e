"""``McpServer``: how to reach one MCP server (a command over stdio, or a URL)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

__all__ = ["McpServer"]

#: A server's name prefixes its tools (``NAME.TOOL``), so it cannot hold a dot.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class McpServer:
    """One MCP server: ``command`` (an argv list, run without a shell, spoken to over
    stdio, with ``env`` added to a minimal environment) or ``url`` (streamable HTTP).

    ``name`` prefixes its tools: the server's ``search`` tool becomes ``NAME.search``.
    """

    name: str
    command: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"MCP server name {self.name!r} must start with a letter and hold only letters, "
                "digits, '_' or '-' (it prefixes the tool names: NAME.TOOL)"
            )
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if bool(self.command) == bool(self.url):
            raise ValueError(f"MCP server {self.name!r}: give either command (an argv list) or url, not both")
        if isinstance(self.command, str) or not all(isinstance(arg, str) for arg in self.command):
            raise ValueError(f"MCP server {self.name!r}: command must be a list of strings (argv)")
        if self.url is not None:
            if urlsplit(self.url).scheme not in ("http", "https"):
                raise ValueError(
                    f"MCP server {self.name!r}: url must be http:// or https://, got {self.url!r}"
                )
            if self.env:
                raise ValueError(f"MCP server {self.name!r}: env applies to a command, not to a url")

    def describe(self) -> str:
        """``NAME (argv0 ...)`` or ``NAME (URL)``, for messages."""
        return f"{self.name} ({self.url or ' '.join(self.command)})"
