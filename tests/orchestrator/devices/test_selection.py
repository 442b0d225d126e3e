"""Which device a task gets: the least loaded, ties to the one picked longest ago.

The registry keeps its devices in the order they were last picked, so that on an idle
fleet a pick stops at the first idle device instead of scoring all of them (measured in
benchmarks/devices_scale.py); these tests pin the choices that order must not change.
"""

from __future__ import annotations

from orchestrator.devices.protocol import Capability, Status
from orchestrator.devices.registry import DeviceRegistry

TOOL = Capability(name="noop", parameters={}, digest="d1")


def registry_of(*ids: str) -> DeviceRegistry:
    registry = DeviceRegistry(on_lost=lambda *_: None, on_alive=lambda _: None, ping=lambda _: None)
    for device_id in ids:
        registry.on_status(
            Status(device_id=device_id, session="s", state="online", capabilities=[TOOL], max_concurrency=4),
            retained=False,
        )
        device = registry.get(device_id)
        assert device is not None and device.alive
        registry.prove(device)
    return registry


def pick(registry: DeviceRegistry, digest: str | None = "d1") -> str | None:
    device = registry.select("noop", digest, "any-device", ())
    if device is None:
        return None
    device.in_flight += 1
    return device.device_id


async def test_idle_devices_take_turns_then_the_least_loaded_wins() -> None:
    registry = registry_of("a", "b", "c")
    assert [pick(registry) for _ in range(3)] == ["a", "b", "c"]  # arrival order, then round robin
    b = registry.get("b")
    assert b is not None
    b.in_flight = 0  # b finished: it is the only idle one, though picked after a
    assert pick(registry) == "b"
    # All hold one task now, except that a reports load 3 (other orchestrators' tasks).
    a = registry.get("a")
    assert a is not None
    a.load = 3
    assert pick(registry) == "c"  # c: 1 of 4, picked longest ago among those with 1 of 4
    assert pick(registry) == "b"  # b: 1 of 4 (c now has 2)
    assert [d.device_id for d in registry] == ["a", "c", "b"]  # the order of the last picks


async def test_a_device_that_does_not_fit_is_passed_over_even_when_idle() -> None:
    registry = registry_of("a", "b")
    assert pick(registry, digest="other") is None
    a = registry.get("a")
    assert a is not None
    a.capabilities = {"noop": Capability(name="noop", parameters={"x": 1}, digest="d2")}
    assert pick(registry) == "b" and pick(registry) == "b"
