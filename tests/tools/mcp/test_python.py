"""MCP tools from Python: a real server process (``server.py``) over stdio and HTTP."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator import Orchestrator, Task, TaskGraph
from orchestrator.graph import TaskStatus
from tools.mcp import McpServer, McpServers, McpTool, mcp_tools

from .conftest import server_argv


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


async def test_tools_runs_errors_and_cancellation_with_one_server() -> None:
    """One server process for all of these (starting one costs about a second)."""
    graph = TaskGraph(
        [
            Task(id="sum", tool="t.add", args={"a": 2, "b": 3}),
            Task(id="loud", tool="t.shout", args={"text": "total ${{ steps.sum.output.total }}"}),
            Task(id="pid", tool="t.pid", args={}),
            # Arguments known only at run time are checked before the call goes out.
            Task(id="word", tool="t.shout", args={"text": "two"}),
            Task(id="bad", tool="t.add", args={"a": 1, "b": "${{ steps.word.output }}"}),
            Task(id="err", tool="t.fail", args={"reason": "no such disk"}),
            Task(id="slow", tool="t.wait", args={"seconds": 60}, timeout=0.5),
        ]
    )
    async with McpServers([McpServer("t", command=server_argv())]) as servers:
        tools = {tool.name: tool for tool in servers.tools}
        add = tools["t.add"]
        assert isinstance(add, McpTool) and add.server == "t" and add.remote_name == "add"
        assert add.parameters_schema["required"] == ["a", "b"]
        assert add.output_schema is not None and add.output_schema["required"] == ["total", "terms"]
        assert tools["t.shout"].output_schema == {"type": "string"}  # text only
        assert tools["t.pid"].is_read_only({}) and not add.is_read_only({"a": 1, "b": 2})
        assert add.check_arguments({"a": "x", "c": 1}) == [
            "unknown argument 'c'; expected: a, b",
            "missing required argument 'b'",
            "argument 'a': 'x' is not of type 'integer'",
        ]
        result = await Orchestrator(tools=servers.tools, failure_policy="continue").run(graph)
        # The server saw notifications/cancelled for the timed-out call (it waits up to 10 s).
        probe = await Orchestrator(tools=servers.tools).run(TaskGraph([Task(id="c", tool="t.was_cancelled")]))
    assert probe.tasks["c"].output == {"result": True}
    assert result.tasks["sum"].output == {"total": 5, "terms": [2, 3]}
    assert result.tasks["loud"].output == "TOTAL 5"
    bad, err, slow = result.tasks["bad"], result.tasks["err"], result.tasks["slow"]
    assert bad.status is TaskStatus.FAILED and bad.error is not None
    assert (
        "'b': 'TWO' is not of type 'integer'" in bad.error.message and "MCP server 't'" in bad.error.message
    )
    assert err.status is TaskStatus.FAILED and err.error is not None
    assert err.error.message.startswith("MCP server 't', tool t.fail: Error executing tool fail")
    assert slow.status is TaskStatus.FAILED
    pid = result.tasks["pid"].output["result"]
    assert not _alive(pid), "the server process outlived its block"


async def test_a_server_that_dies_fails_the_step_and_a_retry_restarts_it(tmp_path: Path) -> None:
    marker = tmp_path / "crashed"
    graph = TaskGraph(
        [Task(id="boom", tool="t.crash_once", args={"marker": str(marker)}, retries=1, backoff=0)]
    )
    events = []
    async with McpServers([McpServer("t", command=server_argv())]) as servers:
        orchestrator = Orchestrator(tools=servers.tools)
        async with orchestrator.start(graph) as run:
            async for event in run.events():
                events.append(event)
            result = await run.wait()
        assert servers.sessions["t"].starts == 2
    assert result.ok, result.error
    first_pid = int(marker.read_text())
    assert not _alive(first_pid)
    assert result.tasks["boom"].output["result"].startswith("survived in ")
    retried = [e for e in events if type(e).__name__ == "TaskRetrying"]
    assert retried and "MCP server 't', tool t.crash_once: the server ended during the call" in str(
        retried[0]
    )


async def test_a_server_that_cannot_start_is_named() -> None:
    from tools.mcp import McpServerGone

    with pytest.raises(McpServerGone, match=r"MCP server broken \(.*\) could not be started"):
        async with mcp_tools("broken", command=["/nonexistent/mcp-server"]):
            pass


async def test_streamable_http(http_server: str) -> None:
    graph = TaskGraph([Task(id="sum", tool="web.add", args={"a": 1, "b": 1})])
    async with mcp_tools("web", url=http_server) as found:
        result = await Orchestrator(tools=found).run(graph)
    assert result.tasks["sum"].output == {"total": 2, "terms": [1, 1]}
