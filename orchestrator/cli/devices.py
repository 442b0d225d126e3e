"""Device commands: ``stepweave agent`` (serve tools as a device) and ``stepweave broker``.

They call the same functions as ``python -m orchestrator.devices``; the ``run`` command's
``--broker`` and ``--local-agents`` options live in :mod:`.workflows` and use
:func:`device_executor` from here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer

from ..devices import DeviceAgent, DeviceExecutor, LocalFleet, load_tools, parse_labels, run_agent, run_broker
from ..devices.broker import check_listener_security
from ..devices.settings import BROKER_ENV, redact_url
from ..devices.trust import DEVICE_LABELS_ENV, DEVICE_TRUST_ENV, DEVICES_ENV, DeviceTrust
from ..errors import DeviceError
from .common import err, fail, out

__all__ = [
    "BrokerOption",
    "DeviceLabelOption",
    "DeviceOption",
    "LocalAgentsOption",
    "LocalLabelOption",
    "device_executor",
    "register",
]

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar=BROKER_ENV,
        help="MQTT broker URL (mqtt:// or mqtts://) through which steps with a target run on device agents.",
    ),
]
LocalAgentsOption = Annotated[
    int,
    typer.Option(
        "--local-agents",
        min=0,
        help="Start N device agents on this machine (and a broker unless --broker is given), "
        "offering the --tools modules: try device targets without a fleet.",
    ),
]
LocalLabelOption = Annotated[
    list[str] | None,
    typer.Option("--local-label", help="Label of the --local-agents: key=value (repeatable)."),
]


DeviceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--device",
        help=f"Use only this device id for device steps (repeatable; default ${DEVICES_ENV}, comma-separated). "
        "Others on the broker are ignored.",
    ),
]
DeviceLabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--device-label",
        help=f"Use only devices with this label: key=value (repeatable; default ${DEVICE_LABELS_ENV}). "
        f"Labels are the devices' own claim unless pinned in ${DEVICE_TRUST_ENV}.",
    ),
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
        list[str], typer.Option("--tools", help="Module (name or .py path) whose @tool functions to offer.")
    ],
    broker: BrokerOption = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Label for target matching: key=value (repeatable).")
    ] = None,
    max_concurrency: Annotated[int, typer.Option("--max-concurrency", min=1, help="Most tasks at once.")] = 4,
    namespace: Annotated[str, typer.Option("--namespace", help="Topic prefix shared with orchestrators.")] = (
        "stepweave"
    ),
    insecure_broker: Annotated[
        bool,
        typer.Option(
            "--insecure-broker",
            help="Offer tools that change things through a broker beyond loopback without logging in "
            "(anyone on that broker could run them).",
        ),
    ] = False,
) -> None:
    """Serve tools to orchestrators as a device agent until interrupted."""
    if not broker:
        fail(f"no broker: pass --broker URL or set {BROKER_ENV}", code=2)
    try:
        registry = load_tools(tools)
        labels = parse_labels(label or [])
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

    try:
        asyncio.run(
            run_agent(
                device_id,
                tools=registry,
                broker=broker,
                labels=labels,
                max_concurrency=max_concurrency,
                namespace=namespace,
                allow_insecure=insecure_broker,
                on_ready=ready,
            )
        )
    except (ValueError, DeviceError) as exc:
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
) -> AsyncIterator[DeviceExecutor | None]:
    """The ``device`` executor a run needs, or None when it runs everything locally.

    With ``local_agents``, agents (and a broker, unless one is given) are started on this
    machine first and the executor waits until they are all online. ``devices`` and
    ``device_labels`` (``--device``, ``--device-label``) pin the devices used; what they
    leave out comes from ``STEPWEAVE_DEVICES``, ``STEPWEAVE_DEVICE_LABELS`` and the trust
    file in ``STEPWEAVE_DEVICE_TRUST`` (see ``orchestrator.devices.trust``).
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
    except ValueError as exc:
        fail(str(exc), code=2)
    async with AsyncExitStack() as stack:
        if local_agents:
            try:
                fleet = LocalFleet(
                    local_agents, tools=list(tools), broker=broker, labels=parse_labels(labels or [])
                )
            except ValueError as exc:
                fail(str(exc), code=2)
            await stack.enter_async_context(fleet)
            broker = fleet.url
        executor = await stack.enter_async_context(DeviceExecutor(broker=broker, trust=trust))
        if local_agents:
            await executor.wait_for_devices(local_agents)
        yield executor
