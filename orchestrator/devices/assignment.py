"""Which device gets a task: the least loaded one that fits, now or when a slot frees up.

A task that finds every fitting device full waits in a first-come-first-served queue, and
a freed slot is handed straight to the first waiter it fits (so a newcomer cannot jump
the queue, and a slot release wakes one waiter, not all of them). A task for which no
fitting device exists at all waits ``device_wait`` seconds for one to appear, then fails
with ``DeviceUnavailable`` naming every known device and why it does not fit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..graph import DeviceTarget, LabelsTarget, Target
from .errors import DeviceUnavailable
from .registry import DeviceRegistry, _Device

__all__ = ["Assigner", "Placement"]


@dataclass(slots=True)
class Placement:
    """What one task needs from a device, and what it learned trying them."""

    task_id: str
    tool: str
    #: ``schema_digest`` of the tool's argument schema, as the orchestrator knows it.
    digest: str | None
    target: Target
    #: Devices that failed this task already (it never goes back to one).
    excluded: set[str] = field(default_factory=set)
    #: "device reason" for each earlier attempt, for the final error message.
    history: list[str] = field(default_factory=list)
    #: The task may not move once delivered (not idempotent): prefer proven devices.
    careful: bool = False

    def fits(self, device: _Device) -> bool:
        return device.device_id not in self.excluded and device.fits(self.tool, self.digest, self.target)


class _Waiter:
    __slots__ = ("future", "placement")

    def __init__(self, placement: Placement, future: asyncio.Future[_Device | None]) -> None:
        self.placement = placement
        self.future = future


class Assigner:
    """Reserves device slots for tasks; ``release`` and ``changed`` hand them on."""

    def __init__(self, registry: DeviceRegistry, *, device_wait: float) -> None:
        self._registry = registry
        self._device_wait = device_wait
        self._waiters: dict[_Waiter, None] = {}  # insertion-ordered: first come, first served
        self._closed = False

    def open(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Wake every waiter; each fails with ``DeviceUnavailable``."""
        self._closed = True
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_result(None)

    async def acquire(self, placement: Placement) -> _Device:
        """A device with a slot reserved for the task; waits for one, or ``DeviceUnavailable``."""
        loop = asyncio.get_running_loop()
        missing_since: float | None = None
        # A careful task waits up to device_wait for a proven device; then (a fleet of
        # agents too old to answer pings, say) any device that fits will do.
        careful_until = loop.time() + self._device_wait if placement.careful else None
        while True:
            if self._closed:
                raise DeviceUnavailable("the device executor was closed")
            if careful_until is not None and loop.time() >= careful_until:
                placement.careful = False
                careful_until = None
            device = self._select(placement)
            if device is not None:
                _reserve(device)
                return device
            timeout: float | None = None
            if not self._any_fits(placement):
                missing_since = loop.time() if missing_since is None else missing_since
                timeout = self._device_wait - (loop.time() - missing_since)
                if timeout <= 0:
                    raise DeviceUnavailable(self.explain(placement))
            else:
                missing_since = None
            if careful_until is not None:
                left = careful_until - loop.time()
                timeout = left if timeout is None else min(timeout, left)
            waiter = _Waiter(placement, loop.create_future())
            self._waiters[waiter] = None
            try:
                async with asyncio.timeout(timeout):
                    handed = await waiter.future
            except (TimeoutError, asyncio.CancelledError) as exc:
                # A slot may have been handed over just as the timeout or a cancel arrived.
                future = waiter.future
                handed = future.result() if future.done() and not future.cancelled() else None
                if isinstance(exc, asyncio.CancelledError):
                    if handed is not None:
                        self.release(handed)
                    raise
            finally:
                self._waiters.pop(waiter, None)
            if handed is not None:
                return handed

    def release(self, device: _Device) -> None:
        """A task left ``device``: its slot goes to the first waiter it fits."""
        device.in_flight -= 1
        self._hand_off(device)

    def changed(self) -> None:
        """Devices came, went or changed: reconsider every waiter."""
        self._hand_off(None)

    def explain(self, placement: Placement) -> str:
        """Why no device can take the task (the ``DeviceUnavailable`` message)."""
        why = self._registry.explain(placement.tool, placement.digest, placement.target, placement.excluded)
        earlier = f"; earlier attempts: {'; '.join(placement.history)}" if placement.history else ""
        return (
            f"no device can run task {placement.task_id!r} (tool {placement.tool!r}, "
            f"target {describe_target(placement.target)}): {why}{earlier}"
        )

    def _select(self, placement: Placement) -> _Device | None:
        return self._registry.select(
            placement.tool, placement.digest, placement.target, placement.excluded, careful=placement.careful
        )

    def _any_fits(self, placement: Placement) -> bool:
        return self._registry.has_candidates(
            placement.tool, placement.digest, placement.target, placement.excluded
        )

    def _hand_off(self, device: _Device | None) -> None:
        """Give free slots to waiters in order: ``device``'s only, or (``None``) anyone's."""
        if not self._waiters:
            return
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            placement = waiter.placement
            chosen: _Device | None
            if device is not None:
                if not device.alive or device.in_flight >= device.max_concurrency:
                    return
                if not placement.fits(device):
                    continue
                if placement.careful and not device.proven:
                    continue  # it waits for a proven device (for device_wait at most)
                chosen = device
            else:
                chosen = self._select(placement)
                if chosen is None:
                    if not self._any_fits(placement):
                        del self._waiters[waiter]
                        waiter.future.set_result(None)  # re-evaluate: start the device_wait clock
                    continue
            _reserve(chosen)
            del self._waiters[waiter]
            waiter.future.set_result(chosen)


def _reserve(device: _Device) -> None:
    device.in_flight += 1
    device.assigned += 1


def describe_target(target: Target) -> str:
    """A target as a user would write it."""
    if isinstance(target, DeviceTarget):
        return f"device {target.device}"
    if isinstance(target, LabelsTarget):
        return "labels " + ", ".join(f"{k}={v}" for k, v in sorted(target.labels.items()))
    return str(target)
