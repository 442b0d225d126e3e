"""Run fleet-health.yaml on two device agents started on this machine, with no setup.

    python examples/devices/fleet_health.py

It starts a broker (Mosquitto when installed, else the development-only amqtt) and two
agent processes labelled site=lab that offer the tools of device_tools.py, runs the
workflow through a DeviceExecutor, and prints where each check ran.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from orchestrator import Orchestrator
from orchestrator.devices import DeviceExecutor, LocalFleet, load_tools
from planners import load_workflow

HERE = Path(__file__).resolve().parent
TOOLS = str(HERE / "device_tools.py")


async def main() -> int:
    workflow = load_workflow(HERE / "fleet-health.yaml")
    tools = load_tools([TOOLS])
    problems = workflow.problems(tools)
    if problems:
        print("\n".join(str(p) for p in problems), file=sys.stderr)
        return 1
    inputs = workflow.resolve_inputs()
    async with (
        LocalFleet(2, tools=[TOOLS], labels={"site": "lab"}, id_prefix="lab") as fleet,
        DeviceExecutor(broker=fleet.url) as devices,
    ):
        await devices.wait_for_devices(2)
        orchestrator = Orchestrator(tools=tools, executors={"device": devices})
        result = await orchestrator.run(workflow.to_graph(), inputs=inputs)
    if not result.ok:
        print(f"run {result.status.value}: {result.error}", file=sys.stderr)
        return 1
    for check in result["check"].output:
        print(
            f"{check['device']:>6}  {check['check']:<7} {'ok ' if check['ok'] else 'BAD'} {check['detail']}"
        )
    print(json.dumps(workflow.evaluate_outputs(result, inputs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
