"""Which devices an orchestrator believes: ``DeviceTrust`` pins device ids and labels.

Everything a device announces is its own claim: its labels, its tools, its capacity. The
broker ACL proves only *who* sent a message (the device id is the login). So an
orchestrator that should use only some devices pins them:

```python
DeviceTrust(devices=["lab-1", "lab-2"])                      # only these ids
DeviceTrust(devices={"lab-1": {"site": "lab"}})              # and believe these labels, not theirs
DeviceTrust(labels={"site": "lab"})                          # only devices labelled site=lab
```

A device outside the pins is ignored (never assigned a task; logged once). Pinned labels
replace the announced ones, so a device cannot move itself into another label group.
On the command line: ``--device ID`` (repeatable), ``--device-label k=v`` and
``STEPWEAVE_DEVICES`` / ``STEPWEAVE_DEVICE_LABELS`` / ``STEPWEAVE_DEVICE_TRUST`` (a JSON file
``{"devices": {"lab-1": {"site": "lab"}, "lab-2": null}, "labels": {...}}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .protocol import validate_device_id

__all__ = ["DEVICES_ENV", "DEVICE_LABELS_ENV", "DEVICE_TRUST_ENV", "DeviceTrust"]

DEVICES_ENV = "STEPWEAVE_DEVICES"
DEVICE_LABELS_ENV = "STEPWEAVE_DEVICE_LABELS"
DEVICE_TRUST_ENV = "STEPWEAVE_DEVICE_TRUST"


@dataclass(frozen=True, init=False)
class DeviceTrust:
    """Pins on the devices an orchestrator uses. The default pins nothing: every device.

    Args:
        devices: the device ids to use (``None``: any id the broker lets in). As a mapping,
            an id mapped to labels uses those labels instead of the ones it announces
            (``None`` keeps its own).
        labels: labels every used device must have (its pinned labels, when pinned).
    """

    devices: Mapping[str, Mapping[str, str] | None] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        devices: Mapping[str, Mapping[str, str] | None] | Collection[str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        pinned: dict[str, Mapping[str, str] | None] | None = None
        if devices is not None:
            if isinstance(devices, Mapping):
                pinned = {validate_device_id(k): None if v is None else dict(v) for k, v in devices.items()}
            else:
                if isinstance(devices, str):
                    raise TypeError("devices must be a collection of ids, not one string")
                pinned = {validate_device_id(k): None for k in devices}
        object.__setattr__(self, "devices", pinned)
        object.__setattr__(self, "labels", dict(labels or {}))

    @property
    def pins_anything(self) -> bool:
        return self.devices is not None or bool(self.labels)

    def labels_of(self, device_id: str, announced: Mapping[str, str]) -> dict[str, str]:
        """The labels to believe for ``device_id``: pinned ones, else what it announced."""
        if self.devices is not None:
            pinned = self.devices.get(device_id)
            if pinned is not None:
                return dict(pinned)
        return dict(announced)

    def refusal(self, device_id: str, announced: Mapping[str, str]) -> str | None:
        """Why ``device_id`` is not used (``None``: it is)."""
        if self.devices is not None and device_id not in self.devices:
            return "it is not one of the pinned devices"
        labels = self.labels_of(device_id, announced)
        missing = {k: v for k, v in self.labels.items() if labels.get(k) != v}
        if missing:
            return "it lacks the pinned label(s) " + ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
        return None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DeviceTrust:
        """Read ``{"devices": {id: labels-or-null} | [ids], "labels": {k: v}}`` (JSON)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"device trust file {os.fspath(path)}: {exc}") from None
        if not isinstance(data, dict) or set(data) - {"devices", "labels"}:
            raise ValueError(
                f"device trust file {os.fspath(path)}: expected an object with devices and labels"
            )
        devices, labels = data.get("devices"), data.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f"device trust file {os.fspath(path)}: labels must map names to strings")
        if devices is not None and not isinstance(devices, (dict, list)):
            raise ValueError(f"device trust file {os.fspath(path)}: devices must be a list or an object")
        try:
            return cls(devices, labels)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"device trust file {os.fspath(path)}: {exc}") from None

    @classmethod
    def from_options(
        cls,
        devices: Collection[str] = (),
        labels: Mapping[str, str] | None = None,
        *,
        file: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> DeviceTrust:
        """Command-line pins, falling back to the environment for what they leave out."""
        env = os.environ if env is None else env
        file = file or env.get(DEVICE_TRUST_ENV) or None
        base = cls.from_file(file) if file else cls()
        ids = list(devices) or [d.strip() for d in env.get(DEVICES_ENV, "").split(",") if d.strip()]
        wanted = dict(labels or {})
        if not wanted and env.get(DEVICE_LABELS_ENV):
            from .agent import parse_labels  # the one parser of key=value labels

            wanted = parse_labels([p for p in env[DEVICE_LABELS_ENV].split(",") if p.strip()])
        pinned: dict[str, Mapping[str, str] | None] | None = None
        if base.devices is not None:
            pinned = dict(base.devices)
            if ids:  # both: the ids must be in the file too
                pinned = {k: v for k, v in pinned.items() if k in ids}
        elif ids:
            pinned = dict.fromkeys(ids)
        return cls(pinned, {**base.labels, **wanted})
