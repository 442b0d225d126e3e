"""The device options of ``run``, ``validate``, ``ask`` and ``tsg run``, without the device code.

Declared apart from :mod:`.devices` so that a command that merely accepts ``--broker``
does not import MQTT at start-up; the environment variable names are those of
``orchestrator.devices.settings`` and ``orchestrator.devices.trust`` (a test checks).
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "BrokerOption",
    "DeviceLabelOption",
    "DeviceOption",
    "LocalAgentsOption",
    "LocalLabelOption",
    "NamespaceOption",
]

BrokerOption = Annotated[
    str | None,
    typer.Option(
        "--broker",
        envvar="STEPWEAVE_BROKER",
        help="MQTT broker URL (mqtt:// or mqtts://) through which steps with a target run on device agents.",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        envvar="STEPWEAVE_NAMESPACE",
        help="MQTT topic prefix shared with the agents (default: stepweave); a site bridged under "
        "a prefix of its own: sites/lab/stepweave.",
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
        help="Use only this device id for device steps (repeatable; default $STEPWEAVE_DEVICES, comma-separated). "
        "Others on the broker are ignored.",
    ),
]
DeviceLabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--device-label",
        help="Use only devices with this label: key=value (repeatable; default $STEPWEAVE_DEVICE_LABELS). "
        "Labels are the devices' own claim unless pinned in $STEPWEAVE_DEVICE_TRUST.",
    ),
]
