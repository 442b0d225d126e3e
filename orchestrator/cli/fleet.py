"""``stepweave devices``: the live fleet on a broker, as a table, JSON Lines, or a live view.

Everything shown comes from the devices themselves (ids, labels, tool names, protocol
revision): it is untrusted text, so the table escapes control characters and never
parses markup (``orchestrator.terminal_text``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..devices import DeviceExecutor, DeviceInfo, parse_labels, redact_url
from ..devices.settings import resolve_namespace
from ..devices.trust import DeviceTrust
from ..errors import DeviceError
from ..terminal_text import escape_control, safe_text
from .common import fail, out
from .device_options import BrokerOption, DeviceLabelOption, DeviceOption, NamespaceOption

__all__ = ["device_record", "devices_table", "register"]


def register(app: typer.Typer) -> None:
    app.command("devices")(devices)


def _state(device: DeviceInfo) -> str:
    return "alive" if device.alive else "lost"


def _ago(last_seen: float | None, now: float) -> str:
    return "never" if last_seen is None else f"{max(0.0, now - last_seen):.1f}s ago"


def device_record(device: DeviceInfo, now: float) -> dict[str, Any]:
    """One device as a JSON object (``--json``)."""
    return {
        "id": device.device_id,
        "state": _state(device),
        "labels": dict(device.labels),
        "tools": list(device.tools),
        "read_only_tools": list(device.read_only_tools),
        "load": device.load,
        "max_concurrency": device.max_concurrency,
        "in_flight": device.in_flight,
        "last_heartbeat": device.last_seen,
        "seconds_since_heartbeat": None if device.last_seen is None else round(now - device.last_seen, 3),
        "protocol": device.protocol,
    }


def devices_table(devices: Iterable[DeviceInfo], url: str, now: float) -> Table:
    """The fleet as a table; every cell is plain ``Text`` with control characters escaped."""
    table = Table(title=safe_text(f"devices on {url}"), title_justify="left")
    for column in ("device", "state", "labels", "tools", "load", "in flight", "last heartbeat", "protocol"):
        table.add_column(column, overflow="fold")
    for device in sorted(devices, key=lambda d: d.device_id):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(device.labels.items()))
        tools = ", ".join(
            f"{name} (read-only)" if name in device.read_only_tools else name for name in sorted(device.tools)
        )
        cells = (
            device.device_id,
            _state(device),
            labels or "-",
            tools or "-",
            f"{device.load}/{device.max_concurrency}",
            str(device.in_flight),
            _ago(device.last_seen, now),
            device.protocol,
        )
        table.add_row(*(Text(escape_control(cell, multiline=False)) for cell in cells))
    return table


def devices(
    broker: BrokerOption = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print one JSON object per device.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep the view up to date until interrupted (Ctrl-C).")
    ] = False,
    within: Annotated[
        float,
        typer.Option(
            "--within", min=0, help="Seconds to wait for the devices' retained statuses and answers."
        ),
    ] = 2.0,
    device: DeviceOption = None,
    device_label: DeviceLabelOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """List the live fleet on a broker: id, labels, tools, load, in-flight tasks, last heartbeat, protocol."""
    if not broker:
        fail("no broker: pass --broker URL or set STEPWEAVE_BROKER", code=2)
    try:
        trust = DeviceTrust.from_options(device or [], parse_labels(device_label or []))
        namespace = resolve_namespace(namespace)
    except ValueError as exc:
        fail(str(exc), code=2)

    async def show() -> None:
        async with DeviceExecutor(
            broker=broker, trust=trust, connect_timeout=5.0, namespace=namespace
        ) as executor:
            await executor.settle(within)
            url = executor.settings.url
            if json_lines:
                await _json(executor, watch)
            elif not watch:
                out.print(_view(executor, url))
            else:
                with Live(_view(executor, url), console=out, auto_refresh=False) as live:
                    while True:  # until Ctrl-C
                        await executor.wait_for_change(1.0)  # ages tick even when nothing changes
                        live.update(_view(executor, url), refresh=True)

    try:
        asyncio.run(show())
    except (DeviceError, ValueError) as exc:
        fail(redact_url(f"cannot list the devices: {exc}"))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _view(executor: DeviceExecutor, url: str) -> Group | Text:
    known = executor.devices
    if not known:
        return Text(escape_control(f"no devices on {url}"))
    alive = sum(d.alive for d in known.values())
    return Group(devices_table(known.values(), url, time.time()), Text(f"{alive} of {len(known)} alive"))


async def _json(executor: DeviceExecutor, watch: bool) -> None:
    """Every device once; with ``watch``, then each device again whenever it changes."""
    shown: dict[str, dict[str, Any]] = {}
    while True:
        now = time.time()
        for device_id, info in sorted(executor.devices.items()):
            record = device_record(info, now)
            # The heartbeat's age changes every second: it alone is no news.
            same = {k: v for k, v in record.items() if k not in ("last_heartbeat", "seconds_since_heartbeat")}
            if shown.get(device_id) != same:
                shown[device_id] = same
                print(json.dumps(record), flush=True)
        if not watch:
            return
        await executor.wait_for_change(1.0)
