"""Tools from Model Context Protocol servers (the optional extra ``stepweave[mcp]``).

Each tool of a server becomes a stepweave ``Tool`` named ``SERVER.TOOL``, with the input
(and output) JSON Schemas the server lists. Sessions last as long as an ``async with``
block (``McpServers``, or ``mcp_tools`` for one server). The SDK (``mcp``) is imported
only when a block starts, so stepweave works without it; without it, starting one raises
``McpUnavailableError`` ("pip install 'stepweave[mcp]'").

See ``tools.mcp.errors`` for the exception tree.
"""

from .errors import McpError, McpServerGone, McpUnavailableError
from .servers import McpServers, mcp_tools
from .spec import McpServer
from .tool import McpTool

__all__ = [
    "McpError",
    "McpServer",
    "McpServerGone",
    "McpServers",
    "McpTool",
    "McpUnavailableError",
    "mcp_tools",
]
