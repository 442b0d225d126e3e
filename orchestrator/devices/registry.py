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

Any valid message from a device is proof of life, not only its heartbeats (under a flood
heartbeats are what gets delayed). A device that holds our tasks and misses its deadline
is first *suspected*: pinged and given one more silence limit before it counts as lost.

Everything a device announces is its own claim. Its labels may be overridden by pins
(``DeviceTrust``), the capacity we believe is capped, and a device gets one task at a time
until it has *proven* it answers (a ping echo or an acknowledgement). Ties go to the
device picked longest ago, and a newcomer counts as just picked, so arriving late with a
big capacity does not win every tie. A device that leaves requests unacknowledged is
avoided for a while (quarantine).

Each liveness timer is re-armed lazily: a heartbeat only moves the deadline; the timer,
when it fires early, sleeps again until the deadline. So a heartbeat costs no timer work.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from ..graph import DeviceTarget, LabelsTarget, Target
from .protocol import Capability, Heartbeat, Status
from .ranking import Rank, Ranking
from .trust import DeviceTrust

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
    #: Tools it announces as read-only for every call (``Tool.read_only is True`` there).
    read_only_tools: tuple[str, ...] = ()
    #: It answered a ping or a request: it gets more than one task at a time.
    proven: bool = False
    #: The protocol revision it announces ("1.0/1.1" for agents older than 1.2).
    protocol: str = "1.0/1.1"


class _Device:
    """One device. The parts of its rank (see ``ranking.py``) re-rank it when they change."""

    __slots__ = (
        "_alive",
        "_in_flight",
        "_load",
        "_proven",
        "_ranking",
        "_status",
        "assigned",
        "cap",
        "capabilities",
        "deadline",
        "device_id",
        "heard",
        "jobs",
        "labels",
        "last_pick",
        "last_seen",
        "offline",
        "pick_seq",
        "quarantine_until",
        "rank",
        "strikes",
        "suspect",
        "timer",
        "will",
    )

    def __init__(
        self, status: Status, *, labels: dict[str, str], cap: int, ranking: Ranking, pick_seq: int
    ) -> None:
        self.device_id = status.device_id
        self._status = status
        self.labels = labels
        self.cap = cap
        self.capabilities: dict[str, Capability] = {c.name: c for c in status.capabilities}
        self._alive = False
        self.offline = False
        self._in_flight = 0
        self.assigned = 0
        self._load = status.load
        self.heard = 0.0  # loop time of the last live message
        self.last_seen: float | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        #: Pending loss after a last will (the device is not selectable meanwhile).
        self.will: asyncio.TimerHandle | None = None
        #: Keys of this orchestrator's tasks assigned to it.
        self.jobs: set[str] = set()
        #: Answered a ping or a request (it processes what it is sent).
        self._proven = False
        #: Missed its deadline while holding tasks: pinged, on its last grace period.
        self.suspect = False
        #: Loop time it was last picked; a newcomer counts as picked when it arrived.
        self.last_pick = asyncio.get_running_loop().time()
        #: Requests it left unacknowledged; it is avoided until ``quarantine_until``.
        self.strikes = 0
        self.quarantine_until = 0.0
        #: Its place in the order of last picks (a newcomer is the last picked).
        self.pick_seq = pick_seq
        self._ranking = ranking
        #: Its rank while it can take a task (alive, with a free slot), else ``None``.
        self.rank: Rank | None = None

    def _rerank(self) -> None:
        rank: Rank | None = None
        if self._alive:
            window = self.max_concurrency
            if self._in_flight < window:
                busy = max(self._in_flight, self._load)
                rank = (busy / window, self._in_flight, self.pick_seq, self.device_id)
        if rank != self.rank:
            self._ranking.move(self.rank, rank)
            self.rank = rank

    def picked(self, now: float, pick_seq: int) -> None:
        self.last_pick = now
        self.pick_seq = pick_seq
        self._rerank()

    def unrank(self) -> None:
        """It leaves the registry: whatever happens to it later no longer ranks it there."""
        self._ranking.move(self.rank, None)
        self.rank = None
        self._ranking = Ranking()

    @property
    def status(self) -> Status:
        return self._status

    @status.setter
    def status(self, status: Status) -> None:
        self._status = status
        self._rerank()

    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, alive: bool) -> None:
        self._alive = alive
        self._rerank()

    @property
    def in_flight(self) -> int:
        """Tasks this orchestrator has running on it."""
        return self._in_flight

    @in_flight.setter
    def in_flight(self, in_flight: int) -> None:
        self._in_flight = in_flight
        self._rerank()

    @property
    def load(self) -> int:
        """Tasks it reported holding in its last heartbeat (all orchestrators)."""
        return self._load

    @load.setter
    def load(self, load: int) -> None:
        self._load = load
        self._rerank()

    @property
    def proven(self) -> bool:
        return self._proven

    @proven.setter
    def proven(self, proven: bool) -> None:
        self._proven = proven
        self._rerank()

    @property
    def session(self) -> str:
        return self.status.session

    @property
    def max_concurrency(self) -> int:
        """The window we allow it: its claim, capped, and 1 until it has proven it answers."""
        return min(self.status.max_concurrency, self.cap) if self.proven else 1

    def quarantined(self, now: float) -> bool:
        return now < self.quarantine_until

    def fits(self, tool: str, digest: str | None, target: Target) -> bool:
        """Whether this device offers ``tool`` (with this schema) and matches ``target``."""
        capability = self.capabilities.get(tool)
        if capability is None or (digest is not None and capability.digest != digest):
            return False
        if isinstance(target, DeviceTarget):
            return target.device == self.device_id
        if isinstance(target, LabelsTarget):
            labels = self.labels
            return all(labels.get(k) == v for k, v in target.labels.items())
        return True

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            device_id=self.device_id,
            session=self.session,
            alive=self.alive,
            labels=dict(self.labels),
            tools=tuple(self.capabilities),
            max_concurrency=self.max_concurrency,
            in_flight=self.in_flight,
            load=self.load,
            last_seen=self.last_seen,
            read_only_tools=tuple(name for name, c in self.capabilities.items() if c.read_only),
            proven=self.proven,
            protocol=self.status.revision or "1.0/1.1",
        )


class DeviceRegistry:
    """Devices by id, kept current from status and heartbeat messages.

    ``on_lost(device, reason, final)`` runs when an alive device stops being alive
    (``final``: it shut down or restarted, so its tasks are gone; otherwise it went silent or
    its connection dropped, and it may still finish them); ``on_alive(device)`` when one
    becomes alive (again); ``ping(device_id)`` asks for a heartbeat.
    """

    def __init__(
        self,
        *,
        on_lost: Callable[[_Device, str, bool], None],
        on_alive: Callable[[_Device], None],
        ping: Callable[[str], object],
        heartbeat_misses: float = 3.0,
        busy: Callable[[], str | None] = lambda: None,
        trust: DeviceTrust | None = None,
        max_device_concurrency: int = 16,
    ) -> None:
        #: In the order of the last picks (a pick moves a device to the end).
        self._devices: dict[str, _Device] = {}
        #: The devices that can take a task, best first (see ``ranking.py``).
        self._ranking = Ranking()
        self._picks = itertools.count()
        self._on_lost = on_lost
        self._on_alive = on_alive
        self._ping = ping
        self._misses = heartbeat_misses
        self._paused = False
        self._trust = trust or DeviceTrust()
        self._busy = busy
        self._cap = max(1, max_device_concurrency)

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
            will = status.reason == "will"
            why = "its connection dropped (last will)" if will else "it shut down"
            self._lose(device, f"went offline ({why})", final=not will)
            return
        if device is not None and device.session != status.session:
            if retained:
                return  # an older announcement than the session we already know
            self._lose(device, f"restarted (new session {status.session})", final=True)
            self._forget(device)
            device = None
        labels = self._trust.labels_of(status.device_id, status.labels)
        if device is None:
            device = self._devices[status.device_id] = _Device(
                status, labels=labels, cap=self._cap, ranking=self._ranking, pick_seq=next(self._picks)
            )
        else:
            device.status = status
            device.labels = labels
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

    def heard_from(self, device_id: str) -> None:
        """A valid reply came from ``device_id``: it is alive, whatever its heartbeats say."""
        device = self._devices.get(device_id)
        if device is not None and not device.offline:
            self._heard(device)

    def prove(self, device: _Device) -> bool:
        """``device`` answered us; return True if that is news (its window opens)."""
        device.strikes = 0
        device.quarantine_until = 0.0
        if device.proven:
            return False
        device.proven = True
        return True

    def strike(self, device: _Device, reason: str) -> float:
        """``device`` left a request unacknowledged: avoid it for a while (doubling each time).

        Return the pause in seconds.
        """
        device.strikes += 1
        device.proven = False
        pause: float = min(5.0 * 2.0 ** (device.strikes - 1), 300.0)
        device.quarantine_until = asyncio.get_running_loop().time() + pause
        _log.warning("device %s %s; avoiding it for %gs", device.device_id, reason, pause)
        return pause

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
        device.suspect = False
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
        busy = self._busy()
        if busy is not None:
            # Messages wait for us (a flood, our own backlog): the device's may be among them.
            _log.info("device %s is silent, but %s: not judging it yet", device.device_id, busy)
            device.deadline = loop.time() + limit
            device.timer = loop.call_at(device.deadline, self._check, device)
            return
        if device.jobs and not device.suspect:
            # It holds our tasks: losing it costs a failover (or, for a non-idempotent task, a
            # failure). Silence can be our own inbox being flooded: ask, and wait once more.
            device.suspect = True
            device.deadline = loop.time() + limit
            device.timer = loop.call_at(device.deadline, self._check, device)
            _log.info(
                "device %s: %gs without a message while it holds tasks; pinging it", device.device_id, limit
            )
            self._ping(device.device_id)
            return
        waited = limit * 2 if device.suspect else limit
        self._lose(device, f"missed its heartbeat deadline ({waited:g}s without a message)")

    def _lose(self, device: _Device, reason: str, *, final: bool = False) -> None:
        if device.will is not None:
            device.will.cancel()
            device.will = None
        if device.timer is not None:
            device.timer.cancel()
            device.timer = None
        if not device.alive:
            return
        device.alive = False
        device.suspect = False
        _log.warning("device %s %s", device.device_id, reason)
        self._on_lost(device, reason, final)

    def forget(self, device_id: str) -> None:
        """Drop a device that is not alive (its retained status was deleted)."""
        device = self._devices.get(device_id)
        if device is not None and not device.alive:
            self._forget(device)

    def _forget(self, device: _Device) -> None:
        if self._devices.get(device.device_id) is device:
            del self._devices[device.device_id]
            device.unrank()

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
        self,
        tool: str,
        digest: str | None,
        target: Target,
        excluded: Collection[str],
        *,
        careful: bool = False,
    ) -> _Device | None:
        """The least-loaded alive device that fits and has a free slot, or ``None``.

        Ties go to the device picked longest ago. ``careful`` (a task that may not move once
        delivered): only proven devices (the assigner relaxes this after ``device_wait``).

        Devices are walked in rank order (``ranking.py``: the score a pick compares, then
        the order of the last picks), so the first one that fits is the best one, and on a
        uniform fleet, idle or busy, a pick looks at one device instead of scoring all of
        them (benchmarks/devices_scale.py).
        """
        now = asyncio.get_running_loop().time()
        best: _Device | None = None
        devices = self._devices
        for rank in self._ranking:
            device = devices[rank[3]]
            if device.will is not None or device.quarantined(now):
                continue
            if device.device_id in excluded or not device.fits(tool, digest, target):
                continue
            if careful and not device.proven:
                continue
            best = device
            break
        if best is not None:
            best.picked(now, next(self._picks))
            del devices[best.device_id]
            devices[best.device_id] = best
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
            return (
                f"announces another version of tool {tool!r} than the task was checked against "
                "(its argument schema differs: update the local copy or the device)"
            )
        if isinstance(target, DeviceTarget) and target.device != device.device_id:
            return "is not the requested device"
        if isinstance(target, LabelsTarget) and not device.fits(tool, digest, target):
            labels = ", ".join(f"{k}={v}" for k, v in sorted(device.labels.items())) or "none"
            return f"labels do not match (it has {labels})"
        if device.device_id in excluded:
            return "already failed this task"
        if device.offline:
            return "offline"
        if not device.alive:
            return "not alive (no heartbeat)"
        if device.quarantined(asyncio.get_running_loop().time()):
            return "avoided: it left requests unacknowledged"
        return "full"
