"""The live device registry: who is there, what they offer, and whether they are alive.

Built from retained status messages and heartbeats. A device is *alive* once we have
heard from it live (a heartbeat, or a status published while we listened): a retained
status alone may be the ghost of a device that died where no will could fire (amqtt never
fires a hung client's will), so such a device is pinged first. It stops being alive when
its session says offline, when a new session replaces it (the agent restarted), or when
it misses its heartbeat deadline.

A clean shutdown counts at once. A last will counts after a short grace period unless we
hear from the device again, or lose our own connection, first: a broker that is being
stopped publishes the wills of every client it still has, and those devices are fine.

Each liveness timer is re-armed lazily: a heartbeat only moves the deadline; the timer,
when it fires early, sleeps again until the deadline. So a heartbeat costs no timer work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ..graph import DeviceTarget, LabelsTarget, Target
from .protocol import Capability, Heartbeat, Status

__all__ = ["DeviceInfo", "DeviceRegistry"]

_log = logging.getLogger("stepweave.devices.registry")

#: Never declare a device lost sooner than this, whatever its heartbeat interval.
_MIN_SILENCE = 0.2
#: How long a last will waits for a reason to disbelieve it (see the module docstring).
WILL_GRACE = 0.25


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A snapshot of one device as this orchestrator sees it."""

    device_id: str
    session: str
    alive: bool
    labels: dict[str, str]
    tools: tuple[str, ...]
    max_concurrency: int
    #: Tasks this orchestrator has running on it.
    in_flight: int
    #: Tasks it reported holding in its last heartbeat (all orchestrators).
    load: int
    #: ``time.time()`` of the last message heard from it, or ``None``.
    last_seen: float | None


class _Device:
    __slots__ = (
        "alive",
        "assigned",
        "capabilities",
        "deadline",
        "device_id",
        "heard",
        "in_flight",
        "jobs",
        "last_seen",
        "load",
        "offline",
        "status",
        "timer",
        "will",
    )

    def __init__(self, status: Status) -> None:
        self.device_id = status.device_id
        self.status = status
        self.capabilities: dict[str, Capability] = {c.name: c for c in status.capabilities}
        self.alive = False
        self.offline = False
        self.in_flight = 0
        self.assigned = 0
        self.load = status.load
        self.heard = 0.0  # loop time of the last live message
        self.last_seen: float | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        #: Pending loss after a last will (the device is not selectable meanwhile).
        self.will: asyncio.TimerHandle | None = None
        #: Keys of this orchestrator's tasks assigned to it.
        self.jobs: set[str] = set()

    @property
    def session(self) -> str:
        return self.status.session

    @property
    def max_concurrency(self) -> int:
        return self.status.max_concurrency

    def fits(self, tool: str, digest: str | None, target: Target) -> bool:
        """Whether this device offers ``tool`` (with this schema) and matches ``target``."""
        capability = self.capabilities.get(tool)
        if capability is None or (digest is not None and capability.digest != digest):
            return False
        if isinstance(target, DeviceTarget):
            return target.device == self.device_id
        if isinstance(target, LabelsTarget):
            labels = self.status.labels
            return all(labels.get(k) == v for k, v in target.labels.items())
        return True

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            device_id=self.device_id,
            session=self.session,
            alive=self.alive,
            labels=dict(self.status.labels),
            tools=tuple(self.capabilities),
            max_concurrency=self.max_concurrency,
            in_flight=self.in_flight,
            load=self.load,
            last_seen=self.last_seen,
        )


class DeviceRegistry:
    """Devices by id, kept current from status and heartbeat messages.

    ``on_lost(device, reason)`` runs when an alive device stops being alive;
    ``on_alive(device)`` when one becomes alive (again); ``ping(device_id)`` asks for a
    heartbeat to confirm a device known only from the retained store.
    """

    def __init__(
        self,
        *,
        on_lost: Callable[[_Device, str], None],
        on_alive: Callable[[_Device], None],
        ping: Callable[[str], None],
        heartbeat_misses: float = 3.0,
    ) -> None:
        self._devices: dict[str, _Device] = {}
        self._on_lost = on_lost
        self._on_alive = on_alive
        self._ping = ping
        self._misses = heartbeat_misses
        self._paused = False

    def __iter__(self) -> Iterator[_Device]:
        return iter(self._devices.values())

    def get(self, device_id: str) -> _Device | None:
        return self._devices.get(device_id)

    def silence_limit(self, device: _Device) -> float:
        return max(device.status.heartbeat_interval * self._misses, _MIN_SILENCE)

    # -- messages ---------------------------------------------------------------------

    def on_status(self, status: Status, *, retained: bool) -> None:
        device = self._devices.get(status.device_id)
        if status.state == "offline":
            if device is None or device.session != status.session or retained:
                return
            if status.reason == "will" and device.alive and not self._paused:
                if device.will is None:
                    loop = asyncio.get_running_loop()
                    device.will = loop.call_later(WILL_GRACE, self._will_expired, device)
                return
            device.offline = True
            why = "its connection dropped (last will)" if status.reason == "will" else "it shut down"
            self._lose(device, f"went offline ({why})")
            return
        if device is not None and device.session != status.session:
            if retained:
                return  # an older announcement than the session we already know
            self._lose(device, f"restarted (new session {status.session})")
            self._forget(device)
            device = None
        if device is None:
            device = self._devices[status.device_id] = _Device(status)
        else:
            device.status = status
            device.capabilities = {c.name: c for c in status.capabilities}
        device.offline = False
        if not retained:
            self._heard(device)
        elif not device.alive:
            self._ping(device.device_id)

    def on_heartbeat(self, beat: Heartbeat) -> _Device | None:
        """Refresh liveness; return the device when the beat is from its current session."""
        device = self._devices.get(beat.device_id)
        if device is None or device.session != beat.session or device.offline:
            return None
        device.load = beat.load
        self._heard(device)
        return device

    # -- liveness ---------------------------------------------------------------------

    def _will_expired(self, device: _Device) -> None:
        device.will = None
        device.offline = True
        self._lose(device, "went offline (its connection dropped: last will)")

    def _heard(self, device: _Device) -> None:
        if device.will is not None:
            device.will.cancel()  # it spoke after its will: the will was stale
            device.will = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        device.heard = now
        device.last_seen = time.time()
        device.deadline = now + self.silence_limit(device)
        if self._paused:
            return
        if device.timer is None:
            device.timer = loop.call_at(device.deadline, self._check, device)
        if not device.alive:
            device.alive = True
            _log.info("device %s is alive (session %s)", device.device_id, device.session)
            self._on_alive(device)

    def _check(self, device: _Device) -> None:
        device.timer = None
        if not device.alive or self._paused:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < device.deadline:
            device.timer = loop.call_at(device.deadline, self._check, device)
            return
        limit = self.silence_limit(device)
        self._lose(device, f"missed its heartbeat deadline ({limit:g}s without a heartbeat)")

    def _lose(self, device: _Device, reason: str) -> None:
        if device.will is not None:
            device.will.cancel()
            device.will = None
        if device.timer is not None:
            device.timer.cancel()
            device.timer = None
        if not device.alive:
            return
        device.alive = False
        _log.warning("device %s %s", device.device_id, reason)
        self._on_lost(device, reason)

    def forget(self, device_id: str) -> None:
        """Drop a device that is not alive (its retained status was deleted)."""
        device = self._devices.get(device_id)
        if device is not None and not device.alive:
            self._forget(device)

    def _forget(self, device: _Device) -> None:
        if self._devices.get(device.device_id) is device:
            del self._devices[device.device_id]

    def pause(self) -> None:
        """Our own connection dropped: silence (and recent wills) say nothing about the devices."""
        self._paused = True
        for device in self._devices.values():
            if device.timer is not None:
                device.timer.cancel()
                device.timer = None
            if device.will is not None:
                device.will.cancel()
                device.will = None

    def resume(self) -> None:
        """Reconnected: give every alive device a fresh deadline and ask it for a heartbeat."""
        self._paused = False
        loop = asyncio.get_running_loop()
        for device in self._devices.values():
            if device.alive:
                device.deadline = loop.time() + self.silence_limit(device)
                device.timer = loop.call_at(device.deadline, self._check, device)
            if not device.offline:
                self._ping(device.device_id)

    def close(self) -> None:
        self.pause()

    # -- selection --------------------------------------------------------------------

    def select(
        self, tool: str, digest: str | None, target: Target, excluded: Collection[str]
    ) -> _Device | None:
        """The least-loaded alive device that fits and has a free slot, or ``None``."""
        best: _Device | None = None
        best_score = (2.0, 0, 0)
        for device in self._devices.values():
            if not device.alive or device.will is not None or device.in_flight >= device.max_concurrency:
                continue
            if device.device_id in excluded or not device.fits(tool, digest, target):
                continue
            busy = max(device.in_flight, device.load)
            score = (busy / device.max_concurrency, device.in_flight, device.assigned)
            if best is None or score < best_score:
                best, best_score = device, score
        return best

    def has_candidates(
        self, tool: str, digest: str | None, target: Target, excluded: Collection[str]
    ) -> bool:
        """Whether any alive device fits, full or not (a full one will free a slot)."""
        return any(
            d.alive and d.device_id not in excluded and d.fits(tool, digest, target)
            for d in self._devices.values()
        )

    def explain(self, tool: str, digest: str | None, target: Target, excluded: Collection[str]) -> str:
        """Why no device fits, one reason per known device (for the ``DeviceUnavailable`` message)."""
        if not self._devices:
            return "no device has announced itself on the broker"
        reasons = []
        for device in sorted(self._devices.values(), key=lambda d: d.device_id):
            reasons.append(f"{device.device_id}: {self._why_not(device, tool, digest, target, excluded)}")
        return "; ".join(reasons)

    @staticmethod
    def _why_not(
        device: _Device, tool: str, digest: str | None, target: Target, excluded: Collection[str]
    ) -> str:
        capability = device.capabilities.get(tool)
        if capability is None:
            return f"has no tool {tool!r}"
        if digest is not None and capability.digest != digest:
            return f"has a different version of tool {tool!r} (its argument schema differs)"
        if isinstance(target, DeviceTarget) and target.device != device.device_id:
            return "is not the requested device"
        if isinstance(target, LabelsTarget) and not device.fits(tool, digest, target):
            labels = ", ".join(f"{k}={v}" for k, v in sorted(device.status.labels.items())) or "none"
            return f"labels do not match (it has {labels})"
        if device.device_id in excluded:
            return "already failed this task"
        if device.offline:
            return "offline"
        if not device.alive:
            return "not alive (no heartbeat)"
        return "full"
