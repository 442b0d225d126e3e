"""Local mode: the broker command, agent processes, LocalFleet and the example."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from orchestrator.devices import DeviceExecutor, load_tools, spawn_agent
from orchestrator.devices.broker import free_port
from orchestrator.devices.protocol import Ping, encode

from .conftest import AGENT_TOOLS, HEARTBEAT, LogWatch, next_message, raw_client

ROOT = Path(__file__).resolve().parents[3]


async def test_the_broker_command_serves_until_stopped(broker_kind: str) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "orchestrator.devices", "broker", "--kind", broker_kind, "--port", str(port)],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(15):
            lines = []
            while not lines or "ready" not in lines[-1]:
                lines.append((await process.stdout.readline()).decode())
                assert lines[-1], f"the broker exited: {''.join(lines)}"
        assert f"stepweave broker ready mqtt://127.0.0.1:{port} ({broker_kind})" in lines[-1]
        if broker_kind == "amqtt":
            assert any("for development only" in line for line in lines)
        async with raw_client(f"mqtt://127.0.0.1:{port}") as client:
            await client.subscribe("probe", qos=1)
            await client.publish("probe", encode(Ping()), qos=1)
            assert (await next_message(client)).payload == encode(Ping())
        children = psutil.Process(process.pid).children(recursive=True)
        # SIGTERM (what a service manager sends) must stop the broker's own Mosquitto too.
        process.terminate()
        assert await process.wait() == 0
        _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=10)
        assert alive == [], f"left running after SIGTERM: {alive}"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_agent_process_goes_offline_cleanly_on_sigterm(
    broker_url: str, namespace: str, executor_factory: Callable[..., DeviceExecutor], logs: LogWatch
) -> None:
    agent = await spawn_agent(
        "p1", broker=broker_url, tools=[AGENT_TOOLS], namespace=namespace, heartbeat_interval=HEARTBEAT
    )
    try:
        async with executor_factory() as devices:
            [info] = await devices.wait_for_devices(ids=["p1"])
            assert info.tools == ("work",) and info.alive
            assert await agent.stop() == 0
            await logs.wait_for("device p1 went offline \\(it shut down\\)")
            assert not devices.devices["p1"].alive
    finally:
        await agent.stop()


def test_the_fleet_example_runs_end_to_end() -> None:
    proc = subprocess.run(
        [sys.executable, "examples/devices/fleet_health.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"healthy": true' in proc.stdout
    for check in ("disk", "load", "memory", "uptime", "python"):
        assert check in proc.stdout
    assert "lab-1" in proc.stdout and "lab-2" in proc.stdout, "the checks were spread over both agents"


def test_load_tools_names_the_module_that_fails(tmp_path: Path) -> None:
    assert load_tools([AGENT_TOOLS]).names == ["work"]
    with pytest.raises(ValueError, match="--tools no_such_module_here: ModuleNotFoundError"):
        load_tools(["no_such_module_here"])
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(ValueError, match="defines no @tool functions"):
        load_tools([str(empty)])
