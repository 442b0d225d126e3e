"""A real MCP server for the tests, written with the SDK (``MCPServer``).

Run as ``python server.py`` it serves over stdio; ``python server.py --http PORT`` serves
streamable HTTP on 127.0.0.1. Its tools cover what the client must handle: structured
and text results, a read-only annotation, a tool error, a call that waits (to be
cancelled), and a process that dies in the middle of a call.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("stepweave-test")

_cancelled = anyio.Event()


class Sum(BaseModel):
    total: int
    terms: list[int]


@server.tool()
def add(a: int, b: int) -> Sum:
    """Add two integers."""
    return Sum(total=a + b, terms=[a, b])


@server.tool(structured_output=False)
def shout(text: str) -> str:
    """Upper-case a text (a text-only result)."""
    return text.upper()


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def pid() -> int:
    """The server's process id (read-only)."""
    return os.getpid()


@server.tool()
def fail(reason: str) -> str:
    """Fail with ``reason`` (a tool error, reported in the result)."""
    raise ValueError(reason)


@server.tool()
async def wait(seconds: float) -> str:
    """Wait, and remember if the client cancelled the call."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        _cancelled.set()
        raise
    return "waited"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def was_cancelled() -> bool:
    """Whether a ``wait`` call was cancelled (waits up to 10 s for it to happen)."""
    with anyio.move_on_after(10):
        await _cancelled.wait()
    return _cancelled.is_set()


@server.tool()
def crash_once(marker: str) -> str:
    """Kill this process the first time (when ``marker`` does not exist yet), then succeed."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(3)
    return f"survived in {os.getpid()}"


@server.tool()
def env(name: str) -> str:
    """The value of an environment variable of the server process."""
    return os.environ.get(name, "")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
