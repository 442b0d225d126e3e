"""Broker-side security for a fleet: a Mosquitto ACL and password file.

Our protocol already drops results that do not come from the device a task is assigned
to; the broker makes that sender trustworthy. With this ACL each device logs in with its
device id as user name and may only read its own task and control topics and publish its
own status, heartbeats and results (``…/results/<its id>``), so one device can neither
read another's work nor speak in its name. Orchestrators may address every device and
read results. ``docs/devices.md`` shows the files and how to start Mosquitto with them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence

from .protocol import DEFAULT_NAMESPACE, Topics, validate_device_id

__all__ = ["mosquitto_acl", "mosquitto_password_line", "write_password_file"]


def mosquitto_acl(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    orchestrators: Sequence[str] = ("orchestrator",),
    monitors: Sequence[str] = (),
    devices: Sequence[str] | None = None,
) -> str:
    """The ACL file text: devices confined to their own topics.

    ``orchestrators`` are the user names of orchestrators; ``monitors`` may read every
    topic of the namespace (for ``mosquitto_sub`` debugging) and publish nothing.
    A device's id must not be one of these user names.

    Without ``devices``, ``pattern`` lines (``%u`` is the user name) let any user act as
    the device named like it. Mosquitto applies patterns to *every* user, so orchestrator
    and monitor users are explicitly denied the device topics of their own name (without
    that, the "read-only" monitor could announce itself as device ``monitor``). With
    ``devices``, each listed id gets its own ``user`` block and there are no patterns: only
    those ids can act as devices at all (pinning the fleet on the broker side).
    """
    ns = Topics(namespace).namespace
    for name in [*orchestrators, *monitors, *(devices or ())]:
        validate_device_id(name)
    clash = set(devices or ()) & {*orchestrators, *monitors}
    if clash:
        raise ValueError(
            f"device ids may not be orchestrator or monitor user names: {', '.join(sorted(clash))}"
        )

    def device_rules(kind: str, user: str) -> list[str]:
        return [
            f"{kind} read {ns}/devices/{user}/tasks",
            f"{kind} read {ns}/devices/{user}/control",
            f"{kind} readwrite {ns}/devices/{user}/status",
            f"{kind} write {ns}/devices/{user}/heartbeat",
            f"{kind} write {ns}/orchestrators/+/results/{user}",
        ]

    def not_a_device(user: str) -> list[str]:
        if devices is not None:
            return []  # no patterns: nothing to take away
        # Deny lines are checked before any grant, for this user only.
        return [f"topic deny {ns}/devices/{user}/#", f"topic deny {ns}/orchestrators/+/results/{user}"]

    lines = ["# stepweave device ACL (orchestrator.devices.mosquitto_acl)"]
    if devices is None:
        lines += [
            "# Every device logs in with its device id as user name and may use only its own topics.",
            *device_rules("pattern", "%u"),
        ]
    else:
        lines.append("# Only these devices; each logs in with its device id and may use only its own topics.")
        for device in devices:
            lines += ["", f"user {device}", *device_rules("topic", device)]
    for user in orchestrators:
        lines += [
            "",
            "# An orchestrator: addresses every device, reads statuses, heartbeats and results.",
            f"user {user}",
            *not_a_device(user),
            f"topic write {ns}/devices/+/tasks",
            f"topic write {ns}/devices/+/control",
            f"topic read {ns}/devices/+/status",
            f"topic read {ns}/devices/+/heartbeat",
            f"topic read {ns}/orchestrators/+/results/+",
        ]
    for user in monitors:
        lines += [
            "",
            "# A read-only monitor of the whole namespace (it may not act as a device either).",
            f"user {user}",
            *not_a_device(user),
            f"topic read {ns}/#",
        ]
    return "\n".join(lines) + "\n"


def mosquitto_password_line(username: str, password: str, *, iterations: int = 101) -> str:
    """One password-file line in Mosquitto 2's format (``$7$``: PBKDF2-SHA512), like ``mosquitto_passwd``."""
    if ":" in username or not username:
        raise ValueError(f"invalid user name {username!r}")
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    encoded = f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    return f"{username}:{encoded}"


def write_password_file(path: str | os.PathLike[str], users: Mapping[str, str]) -> None:
    """Write a Mosquitto password file for ``{user: password}``, readable by its owner only."""
    text = "".join(mosquitto_password_line(user, password) + "\n" for user, password in users.items())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
