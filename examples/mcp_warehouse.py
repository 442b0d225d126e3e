"""A small MCP server for the docs' example (docs/integrations.md): a warehouse's stock.

Written with the official MCP SDK (``pip install 'stepweave[mcp]'``). It serves over stdio
(``python examples/mcp_warehouse.py``), or streamable HTTP with ``--http PORT``.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("warehouse")

_STOCK = {"bolts": 120, "nuts": 80, "washers": 0}


class Stock(BaseModel):
    item: str
    count: int


class Reservation(BaseModel):
    item: str
    reserved: int
    left: int


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def stock(item: str) -> Stock:
    """How many of ``item`` are in stock."""
    return Stock(item=item, count=_STOCK.get(item, 0))


@server.tool()
def reserve(item: str, count: int) -> Reservation:
    """Reserve ``count`` of ``item`` (fails when there are not enough)."""
    have = _STOCK.get(item, 0)
    if count > have:
        raise ValueError(f"only {have} {item} in stock")
    _STOCK[item] = have - count
    return Reservation(item=item, reserved=count, left=have - count)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
