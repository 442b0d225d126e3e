"""Device commands: ``stepweave agent`` (serve tools as a device) and ``stepweave broker``.

They call the same functions as ``python -m orchestrator.devices``; the ``run`` command's
``--broker`` and ``--local-agents`` options live in :mod:`.workflows` and use
:func:`device_executor` from here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tools.mcp import McpError

from ..devices import (
    DeviceAgent,
    DeviceExecutor,
    DeviceInfo,
    LocalFleet,
    load_tools,
    parse_labels,
    run_agent,
    run_broker,
)
from ..devices.broker import check_listener_security
from ..devices.catalog import FleetPlacement, FleetTool, RemoteTool, fleet_problems
from ..devices.settings import BROKER_ENV, redact_url, resolve_namespace
from ..devices.trust import DeviceTrust
from ..errors import DeviceError
from ..graph import Target, Task
from ..terminal_text import escape_control
from .common import err, fail, out
from .device_options import (
    BrokerOption,
    DeviceLabelOption,
    DeviceOption,
    LocalAgentsOption,
    LocalLabelOption,
    NamespaceOption,
)
from .mcp_client import McpOption, parse_mcp_options, registered_tools

if TYPE_CHECKING:
    from tools import Tool, ToolRegistry

__all__ = [
    "BrokerOption",
    "DeviceLabelOption",
    "DeviceOption",
    "FleetView",
    "LocalAgentsOption",
    "LocalLabelOption",
    "NamespaceOption",
    "check_fleet",
    "device_executor",
    "fleet_offer",
    "learn_fleet",
    "register",
    "with_fleet",
]


def register(app: typer.Typer) -> None:
    app.command()(agent)
    app.command()(broker)


def _log_to_stderr(level: str) -> None:
    logging.basicConfig(
        level=os.environ.get("STEPWEAVE_LOG_LEVEL", level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def agent(
    device_id: Annotated[str, typer.Option("--id", help="This device's id (letters, digits, - _ .).")],
    tools: Annotated[
        list[str] | None,
        typer.Option("--tools", help="Module (name or .py path) whose @tool functions to offer."),
    ] = None,
    broker: BrokerOption = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Label for target matching: key=value (repeatable).")
    ] = None,
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", min=1, help="Most tasks at once.")] = 4,
    namespace: NamespaceOption = None,
    insecure_broker: Annotated[
        bool,
        typer.Option(
            "--insecure-broker",
            help="Offer tools that change things through a broker beyond loopback without logging in "
            "(anyone on that broker could run them).",
        ),
    ] = False,
    mcp: McpOption = None,
) -> None:
    """Serve tools to orchestrators as a device agent until interrupted.

    ``--mcp NAME=COMMAND`` (or ``NAME=URL``) also offers an MCP server's tools, as NAME.TOOL;
    the server runs as long as the agent does (and is restarted if it dies).
    """
    if not broker:
        fail(f"no broker: pass --broker URL or set {BROKER_ENV}", code=2)
    mcp_servers = parse_mcp_options(mcp)
    if not tools and not mcp_servers:
        fail("nothing to offer: pass --tools MODULE or --mcp NAME=COMMAND", code=2)
    try:
        registry = load_tools(tools or [])
        labels = parse_labels(label or [])
        namespace = resolve_namespace(namespace)
    except ValueError as exc:
        fail(str(exc), code=2)
    _log_to_stderr("INFO")

    def ready(device: DeviceAgent) -> None:
        names = ", ".join(t.name for t in registry)
        # settings.url never contains the password (the raw --broker value may).
        err.print(
            f"agent {device.device_id} online at {device.settings.url}: {names}",
            highlight=False,
            markup=False,
        )

    async def serve() -> None:
        async with registered_tools(mcp_servers, registry):
            await run_agent(
                device_id,
                tools=registry,
                broker=broker,
                labels=labels,
                max_concurrency=max_concurrency,
                namespace=namespace,
                allow_insecure=insecure_broker,
                on_ready=ready,
            )

    try:
        asyncio.run(serve())
    except (ValueError, DeviceError, McpError) as exc:
        fail(redact_url(f"agent {device_id}: {exc}"))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def broker(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 1883,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on; beyond loopback it needs --password-file (or --allow-anonymous).",
        ),
    ] = "127.0.0.1",
    kind: Annotated[str, typer.Option("--kind", help="auto, mosquitto or amqtt.")] = "auto",
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file", help="Mosquitto password file: clients must log in (no anonymous ones)."
        ),
    ] = None,
    acl_file: Annotated[
        Path | None,
        typer.Option("--acl-file", help="Mosquitto ACL file (see orchestrator.devices.mosquitto_acl)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM): clients connect with mqtts://.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Private key (PEM) of --tls-cert.")
    ] = None,
    allow_anonymous: Annotated[
        bool,
        typer.Option(
            "--allow-anonymous",
            help="Listen beyond loopback without credentials: anyone who can reach it can send tasks to agents.",
        ),
    ] = False,
) -> None:
    """Run an MQTT broker in the foreground: Mosquitto when installed, else the development amqtt."""
    if kind not in ("auto", "mosquitto", "amqtt"):
        fail(f"--kind must be auto, mosquitto or amqtt, not {kind!r}", code=2)
    try:
        check_listener_security(host, password_file=password_file, allow_anonymous=allow_anonymous)
    except DeviceError as exc:
        fail(str(exc), code=2)
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together", code=2)
    _log_to_stderr("WARNING")

    def listening(url: str, actual: str) -> None:
        out.print(f"stepweave broker ready {url} ({actual})", highlight=False)

    try:
        asyncio.run(
            run_broker(
                port,
                host=host,
                kind=kind,  # type: ignore[arg-type]
                password_file=password_file,
                acl_file=acl_file,
                certfile=tls_cert,
                keyfile=tls_key,
                allow_anonymous=allow_anonymous,
                on_ready=listening,
            )
        )
    except DeviceError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@asynccontextmanager
async def device_executor(
    broker: str | None,
    local_agents: int,
    tools: Sequence[str],
    labels: list[str] | None,
    *,
    devices: list[str] | None = None,
    device_labels: list[str] | None = None,
    namespace: str | None = None,
) -> AsyncIterator[DeviceExecutor | None]:
    """The ``device`` executor a run needs, or None when it runs everything locally.

    With ``local_agents``, agents (and a broker, unless one is given) are started on this
    machine first and the executor waits until they are all online. ``devices`` and
    ``device_labels`` (``--device``, ``--device-label``) pin the devices used; what they
    leave out comes from ``STEPWEAVE_DEVICES``, ``STEPWEAVE_DEVICE_LABELS`` and the trust
    file in ``STEPWEAVE_DEVICE_TRUST`` (see ``orchestrator.devices.trust``). ``namespace``
    (``--namespace``) defaults to ``$STEPWEAVE_NAMESPACE``, then ``stepweave``.
    """
    if not broker and not local_agents:
        if devices or device_labels:
            fail(
                "--device and --device-label pick devices: pass --broker URL or --local-agents N too", code=2
            )
        yield None
        return
    try:
        trust = DeviceTrust.from_options(devices or [], parse_labels(device_labels or []))
        namespace = resolve_namespace(namespace)
    except ValueError as exc:
        fail(str(exc), code=2)
    async with AsyncExitStack() as stack:
        if local_agents:
            try:
                fleet = LocalFleet(
                    local_agents,
                    tools=list(tools),
                    broker=broker,
                    labels=parse_labels(labels or []),
                    namespace=namespace,
                )
            except ValueError as exc:
                fail(str(exc), code=2)
            await stack.enter_async_context(fleet)
            broker = fleet.url
        executor = await stack.enter_async_context(
            DeviceExecutor(broker=broker, trust=trust, namespace=namespace)
        )
        if local_agents:
            await executor.wait_for_devices(local_agents)
        yield executor


@dataclass
class FleetView:
    """The live fleet as one connection saw it: devices and the tools they offer."""

    url: str
    devices: dict[str, DeviceInfo]
    tools: dict[str, FleetTool]

    def summary(self) -> str:
        alive = [d for d in self.devices.values() if d.alive]
        if not alive:
            return "no live device on the broker"
        return "live devices: " + "; ".join(
            f"{d.device_id} ({', '.join(d.tools) or 'no tools'})"
            for d in sorted(alive, key=lambda d: d.device_id)
        )


def _trust(devices: list[str] | None, device_labels: list[str] | None) -> DeviceTrust:
    try:
        return DeviceTrust.from_options(devices or [], parse_labels(device_labels or []))
    except ValueError as exc:
        fail(str(exc), code=2)


def learn_fleet(
    broker: str,
    *,
    devices: list[str] | None = None,
    device_labels: list[str] | None = None,
    within: float = 2.0,
    namespace: str | None = None,
) -> FleetView:
    """Connect, wait briefly for the retained statuses (and their devices to answer), return the fleet."""
    trust = _trust(devices, device_labels)
    try:
        namespace = resolve_namespace(namespace)
    except ValueError as exc:
        fail(str(exc), code=2)

    async def learn() -> FleetView:
        async with DeviceExecutor(
            broker=broker, trust=trust, connect_timeout=5.0, namespace=namespace
        ) as executor:
            await executor.settle(within)
            return FleetView(executor.settings.url, executor.devices, executor.fleet())

    try:
        return asyncio.run(learn())
    except (DeviceError, ValueError) as exc:
        fail(redact_url(f"cannot learn the fleet's tools: {exc}"))


def with_fleet(
    registry: ToolRegistry, fleet: FleetView, *, read_only: Callable[[str], bool] | None = None
) -> ToolRegistry:
    """``registry`` plus a ``RemoteTool`` for each tool only the fleet has.

    ``read_only(name)``: whether a call of the tool counts as read-only (default: what the
    devices announced when the fleet was learnt).
    """
    from tools import ToolRegistry

    merged = ToolRegistry(registry)
    for name, offered in fleet.tools.items():
        if name in merged:
            continue  # a local copy: fleet_problems checks that its schema matches
        ask = None if read_only is None else (lambda name=name: read_only(name))
        merged.register(_remote(offered, ask))
    return merged


def _remote(offered: FleetTool, read_only: Callable[[], bool] | None) -> RemoteTool:
    if read_only is None:
        announced = all(
            offered.capability.read_only and offered.capability.name in d.read_only_tools
            for d in offered.devices
        )
        tool = RemoteTool.from_capability(offered.capability)
        tool.read_only = announced
    else:
        tool = RemoteTool.from_capability(offered.capability, read_only=read_only)
    return tool


def check_fleet(
    where: str,
    tasks: Iterable[Task],
    registry: ToolRegistry,
    fleet: FleetView,
    line_of: Callable[[str], int | None],
) -> None:
    """Fail (naming file, line and step) when a task cannot run on the live fleet."""
    problems = fleet_problems(tasks, {t.name: t for t in registry}, fleet.tools)
    if not problems:
        return
    for task_id, problem in problems:
        line = line_of(task_id.split("[", 1)[0])
        at = f"{where}:{line}" if line else where
        err.print(
            escape_control(f"{at}: step {task_id!r}: {problem}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    fail(f"{where}: {len(problems)} step(s) cannot run on the fleet at {fleet.url} ({fleet.summary()})")


def fleet_offer(local: ToolRegistry, fleet: FleetView, target: Target) -> tuple[ToolRegistry, FleetPlacement]:
    """What an LLM planner is offered over ``fleet``: its tools, and where they run.

    Only tools a live device offers (``local`` copies are used to validate, and must match
    the announced schema). A call counts as read-only only if every live device offering
    the tool announces it read-only (and, for a local copy, the copy declares it too):
    plans are untrusted, so anything else goes through approval. Point the placement's
    ``fleet`` at ``DeviceExecutor.fleet`` once connected, to follow the live fleet.
    """
    from tools import ToolRegistry

    offered = ToolRegistry()
    by_name: dict[str, Tool] = {}  # filled below: the read-only checks need the placement first
    placement = FleetPlacement(lambda: fleet.tools, by_name, target=target)
    for name, on_fleet in fleet.tools.items():
        copy = local.get(name) if name in local else None
        if copy is None:
            offered.register(_remote(on_fleet, functools.partial(placement.read_only, name)))
            continue

        def read_only(args: Any, copy: Any = copy) -> bool:
            return bool(copy.is_read_only(args)) and placement.read_only(copy.name)

        offered.register(dataclasses.replace(copy, read_only=read_only))
    by_name.update((t.name, t) for t in offered)
    return offered, placement
