"""Tools the lab's device agents offer in the fleet-health example.

Agents load this module with ``--tools examples/devices/device_tools.py``; so does the
orchestrator, which needs the same tools (and argument schemas) to check the workflow.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
from collections import Counter
from typing import Literal

from orchestrator.devices import current_device
from tools import tool

Check = Literal["disk", "load", "memory", "uptime", "python"]


def _meminfo() -> dict[str, int]:
    with open("/proc/meminfo") as file:
        return {line.split(":")[0]: int(line.split()[1]) for line in file if line.split()[1:]}


@tool(timeout=10)
def health_check(check: Check) -> dict[str, object]:
    """Run one health check on the device this runs on.

    Args:
        check: Which check: disk, load, memory, uptime or python.
    """
    ok, value, detail = True, 0.0, ""
    if check == "disk":
        usage = shutil.disk_usage("/")
        value = round(100 * usage.free / usage.total, 1)
        ok, detail = value > 5, f"{value}% of / free"
    elif check == "load":
        value = round(os.getloadavg()[0] / (os.cpu_count() or 1), 2)
        ok, detail = value < 4, f"load {value} per CPU"
    elif check == "memory":
        info = _meminfo() if os.path.exists("/proc/meminfo") else {}
        total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
        value = round(100 * available / total, 1) if total else 0.0
        ok, detail = (value > 5 if total else True), f"{value}% of memory available" if total else "unknown"
    elif check == "uptime":
        with open("/proc/uptime") as file:
            value = round(float(file.read().split()[0]) / 3600, 1)
        detail = f"up {value} h"
    else:
        detail = f"Python {platform.python_version()}"
    return {
        "check": check,
        "ok": ok,
        "value": value,
        "detail": detail,
        "device": current_device() or socket.gethostname(),
    }


@tool
def summarize_health(results: list[dict[str, object]]) -> dict[str, object]:
    """Count the healthy checks and which device ran each.

    Args:
        results: The outputs of health_check.
    """
    by_device = Counter(str(r["device"]) for r in results)
    failing = [f"{r['check']} on {r['device']}: {r['detail']}" for r in results if not r["ok"]]
    return {"healthy": not failing, "checks": len(results), "failing": failing, "by_device": dict(by_device)}
