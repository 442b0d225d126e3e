"""Two sites bridged: agents on an edge Mosquitto, the orchestrator on a central one.

The edge broker's ``connection`` bridge carries the edge's ``<namespace>/...`` topics to
the central broker as ``sites/lab/<namespace>/...`` (and back), so each site's devices
live under their own prefix centrally; the orchestrator uses that prefix as its
namespace. This is the configuration docs/devices.md shows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import Orchestrator, Task, TaskEnded
from orchestrator.devices import DeviceExecutor, LocalBroker, find_mosquitto

from . import agent_tools
from .conftest import BACKOFF
from .test_faults import agent_processes, first_progress, pid_of

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="bridges are a Mosquitto feature")


def bridge_config(site: str, central_port: int, namespace: str) -> str:
    """The edge broker's bridge to the central one, its topics under ``sites/<site>/``."""
    return "\n".join(
        [
            f"connection {site}-to-central",
            f"address 127.0.0.1:{central_port}",
            f"remote_clientid bridge-{site}",
            "cleansession true",
            "restart_timeout 1 5",
            # pattern, direction, QoS, local prefix, remote prefix
            f"topic # both 1 {namespace}/ sites/{site}/{namespace}/",
        ]
    )


@pytest.fixture
def sites() -> Iterator[tuple[LocalBroker, LocalBroker, str]]:
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    central = LocalBroker(kind="mosquitto")
    central.start()
    try:
        port = int(central.url.rsplit(":", 1)[1])
        edge = LocalBroker(kind="mosquitto", extra_config=bridge_config("lab", port, namespace))
        edge.start()
        try:
            yield central, edge, namespace
        finally:
            edge.close()
    finally:
        central.close()


async def test_bridged_site_runs_remote_tasks_and_fails_over_inside_the_site(
    sites: tuple[LocalBroker, LocalBroker, str], tmp_path: Path
) -> None:
    central, edge, namespace = sites
    journal = tmp_path / "journal.txt"
    async with (
        agent_processes(edge.url, namespace, "lab-1", "lab-2") as agents,
        DeviceExecutor(
            broker=central.url, namespace=f"sites/lab/{namespace}", ack_timeout=0.5, device_wait=5.0,
            backoff=BACKOFF,
        ) as devices,
        DeviceExecutor(broker=central.url, namespace=namespace, backoff=BACKOFF) as unscoped,
    ):  # fmt: skip
        await devices.wait_for_devices(ids=["lab-1", "lab-2"], within=20)
        orchestrator = Orchestrator(tools=[agent_tools.work], executors={"device": devices})
        task = Task(id="t", tool="work", args={"seconds": 1.0, "journal": str(journal)}, target="any-device")
        async with orchestrator.start([task]) as run:
            progress = await asyncio.wait_for(first_progress(run), 10)
            victim = next(a for a in agents if a.pid == pid_of(progress))
            survivor = next(a for a in agents if a is not victim)
            victim.kill()
            result = await asyncio.wait_for(run.wait(), 30)
            events = [e async for e in run.events()]
        # Centrally, the site's devices exist only under its prefix.
        assert unscoped.devices == {}
    assert result.ok, result.error
    assert result["t"].output == {"pid": survivor.pid}
    assert [e.task_id for e in events if isinstance(e, TaskEnded)] == ["t"]
    lines = journal.read_text().splitlines()
    assert lines == [f"start t {victim.pid}", f"start t {survivor.pid}", f"end t {survivor.pid}"]
