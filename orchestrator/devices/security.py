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

from .protocol import DEFAULT_NAMESPACE, Topics

__all__ = ["mosquitto_acl", "mosquitto_password_line", "write_password_file"]


def mosquitto_acl(
    namespace: str = DEFAULT_NAMESPACE,
    *,
    orchestrators: Sequence[str] = ("orchestrator",),
    monitors: Sequence[str] = (),
) -> str:
    """The ACL file text: devices confined to their own topics (``%u`` is the user name).

    ``orchestrators`` are the user names of orchestrators; ``monitors`` may read every
    topic of the namespace (for ``mosquitto_sub`` debugging), and publish nothing.
    A device's id must not be one of these user names.
    """
    ns = Topics(namespace).namespace
    lines = [
        "# stepweave device ACL (orchestrator.devices.mosquitto_acl)",
        "# Every device logs in with its device id as user name and may use only its own topics.",
        f"pattern read {ns}/devices/%u/tasks",
        f"pattern read {ns}/devices/%u/control",
        f"pattern readwrite {ns}/devices/%u/status",
        f"pattern write {ns}/devices/%u/heartbeat",
        f"pattern write {ns}/orchestrators/+/results/%u",
    ]
    for user in orchestrators:
        lines += [
            "",
            "# An orchestrator: addresses every device, reads statuses, heartbeats and results.",
            f"user {user}",
            f"topic write {ns}/devices/+/tasks",
            f"topic write {ns}/devices/+/control",
            f"topic read {ns}/devices/+/status",
            f"topic read {ns}/devices/+/heartbeat",
            f"topic read {ns}/orchestrators/+/results/+",
        ]
    for user in monitors:
        lines += ["", "# A read-only monitor of the whole namespace.", f"user {user}", f"topic read {ns}/#"]
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
