"""``stepweave agent --mcp NAME=CMD``: a device agent advertises an MCP server's tools
(with their schemas) and runs them for an orchestrator."""

from __future__ import annotations

import asyncio
import shlex
import sys
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path

from orchestrator import Orchestrator, Task
from orchestrator.devices import DeviceExecutor, LocalBroker
from orchestrator.devices.catalog import RemoteTool

from .conftest import server_argv

ROOT = Path(__file__).resolve().parents[3]


async def test_an_agent_offers_and_runs_mcp_tools(tmp_path: Path) -> None:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    async with LocalBroker() as broker:
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator.cli", "agent", "--id", "mcp-dev", "--broker", broker.url,
            "--namespace", namespace, "--mcp", f"t={shlex.join(server_argv())}",
            cwd=tmp_path, stdout=PIPE, stderr=PIPE, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            async with DeviceExecutor(broker=broker.url, namespace=namespace) as devices:
                await devices.wait_for_devices(ids=["mcp-dev"], within=30)
                fleet = devices.fleet()
                assert fleet["t.add"].capability.parameters["required"] == ["a", "b"]
                assert fleet["t.pid"].capability.read_only and not fleet["t.add"].capability.read_only
                tools = [RemoteTool.from_capability(fleet[name].capability) for name in ("t.add", "t.pid")]
                result = await Orchestrator(
                    tools=tools, executors={"device": devices}, failure_policy="continue"
                ).run(
                    [
                        Task(id="sum", tool="t.add", args={"a": 4, "b": 5}, target="any-device"),
                        Task(id="bad", tool="t.add", args={"a": 4, "b": "${{ 'x' }}"}, target="any-device"),
                    ]
                )
        finally:
            agent.terminate()
            _, stderr = await asyncio.wait_for(agent.communicate(), 30)
    assert result.tasks["sum"].output == {"total": 9, "terms": [4, 5]}, stderr.decode()
    bad = result.tasks["bad"].error
    assert bad is not None and "is not of type 'integer'" in bad.message
