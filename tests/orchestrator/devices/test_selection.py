"""Which device a task gets: the least loaded, ties to the one picked longest ago.

The registry keeps the devices that can take a task ranked (orchestrator/devices/ranking.py),
so that a pick stops at the first device that fits instead of scoring all of them (measured
in benchmarks/devices_scale.py); these tests pin the choices that ranking must not change,
against the straightforward scoring of every device, and that a pick in a busy fleet does
not look at every device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.devices.protocol import Capability, Heartbeat, Status
from orchestrator.devices.registry import DeviceRegistry, _Device
from orchestrator.devices.trust import DeviceTrust
from orchestrator.graph import DeviceTarget, LabelsTarget, Target

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


# -- the ranking makes the choices of the straightforward scoring -----------------------------


def scored(
    registry: DeviceRegistry,
    tool: str,
    digest: str | None,
    target: Target,
    excluded: Collection[str],
    careful: bool,
) -> str | None:
    """The choice made before the ranking: score every device, keep the best."""
    now = asyncio.get_running_loop().time()
    best: _Device | None = None
    best_score = (0.0, 0, 0.0)
    for device in registry:  # in the order of the last picks: the first of equals wins
        if not device.alive or device.will is not None or device.quarantined(now):
            continue
        if device.in_flight >= device.max_concurrency:
            continue
        if device.device_id in excluded or not device.fits(tool, digest, target):
            continue
        if careful and not device.proven:
            continue
        score = (
            max(device.in_flight, device.load) / device.max_concurrency,
            device.in_flight,
            device.last_pick,
        )
        if best is None or score < best_score:
            best, best_score = device, score
    return None if best is None else best.device_id


IDS = ["d0", "d1", "d2", "d3", "d4", "d5"]
LABELS = st.sampled_from([{}, {"site": "lab"}, {"site": "edge"}, {"site": "lab", "os": "win"}])
TARGETS = st.sampled_from(
    [
        "any-device",
        LabelsTarget(labels={"site": "lab"}),
        LabelsTarget(labels={"os": "win"}),
        DeviceTarget(device="d2"),
    ]
)
DEVICE = st.sampled_from(IDS)
OPS = st.one_of(
    st.tuples(
        st.just("announce"), DEVICE, LABELS, st.integers(1, 4), st.sampled_from(["d1", "d2"]), st.booleans()
    ),
    st.tuples(st.just("restart"), DEVICE),
    st.tuples(st.just("beat"), DEVICE, st.integers(0, 6)),
    st.tuples(st.just("prove"), DEVICE),
    st.tuples(st.just("strike"), DEVICE),
    st.tuples(st.just("shutdown"), DEVICE),
    st.tuples(st.just("will"), DEVICE),
    st.tuples(st.just("release"), DEVICE),
    st.tuples(
        st.just("pick"),
        TARGETS,
        st.sampled_from(["d1", "d2", None]),
        st.sets(DEVICE, max_size=2),
        st.booleans(),
    ),
)


async def replay(ops: list[tuple[object, ...]]) -> int:
    """Apply ``ops`` to a registry, checking every pick against ``scored``; return the picks made."""
    # d1 is pinned: its labels are the trust list's, whatever it announces.
    trust = DeviceTrust(
        devices={device_id: ({"site": "lab"} if device_id == "d1" else None) for device_id in IDS}
    )
    registry = DeviceRegistry(
        on_lost=lambda *_: None,
        on_alive=lambda _: None,
        ping=lambda _: None,
        trust=trust,
        max_device_concurrency=3,
    )
    sessions = dict.fromkeys(IDS, 0)
    announced: dict[str, Status] = {}
    picks = 0
    for op in ops:
        kind, rest = op[0], op[1:]
        if kind == "pick":
            target, digest, excluded, careful = rest
            assert isinstance(excluded, set) and isinstance(careful, bool)
            expected = scored(registry, "noop", digest, target, excluded, careful)  # type: ignore[arg-type]
            chosen = registry.select("noop", digest, target, excluded, careful=careful)  # type: ignore[arg-type]
            assert (None if chosen is None else chosen.device_id) == expected
            if chosen is not None:
                chosen.in_flight += 1
                picks += 1
            continue
        device_id = str(rest[0])
        if kind in ("announce", "restart"):
            if kind == "restart":
                if device_id not in announced:
                    continue
                sessions[device_id] += 1
                status = announced[device_id].model_copy(update={"session": f"s{sessions[device_id]}"})
            else:
                labels, window, digest, with_tool = rest[1:]
                tools = [Capability(name="noop", parameters={}, digest=str(digest))] if with_tool else []
                status = Status(
                    device_id=device_id,
                    session=f"s{sessions[device_id]}",
                    state="online",
                    capabilities=tools,
                    labels=labels,  # type: ignore[arg-type]
                    max_concurrency=window,  # type: ignore[arg-type]
                )
            announced[device_id] = status
            registry.on_status(status, retained=False)
            continue
        device = registry.get(device_id)
        if device is None:
            continue
        session = device.session
        if kind == "beat":
            registry.on_heartbeat(Heartbeat(device_id=device_id, session=session, load=int(str(rest[1]))))
        elif kind == "prove":
            registry.prove(device)
        elif kind == "strike":
            registry.strike(device, "left a request unacknowledged (test)")
        elif kind in ("shutdown", "will"):
            offline = announced[device_id].model_copy(update={"state": "offline", "reason": kind})
            registry.on_status(offline, retained=False)
        elif kind == "release" and device.in_flight > 0:
            device.in_flight -= 1
    registry.close()
    return picks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=60))
def test_the_ranking_picks_what_scoring_every_device_picks(ops: list[tuple[object, ...]]) -> None:
    asyncio.run(replay(ops))


def test_the_replay_is_not_vacuous() -> None:
    """A fleet announced, proven and loaded unevenly: the replay compares real picks."""
    ops: list[tuple[object, ...]] = [("announce", d, {}, 3, "d1", True) for d in IDS]
    ops += [("prove", d) for d in IDS[:4]] + [("beat", "d0", 2), ("will", "d5")]
    ops += [("pick", "any-device", "d1", set(), False)] * 12
    assert asyncio.run(replay(ops)) == 12


# -- a busy fleet is not scored device by device ------------------------------------------


async def test_a_pick_in_a_busy_fleet_does_not_look_at_every_device(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"dev-{n:03}" for n in range(300)]
    registry = registry_of(*ids)
    assert [pick(registry) for _ in ids] == ids  # every device holds one task now
    looked: list[str] = []
    fits = _Device.fits

    def counting(device: _Device, tool: str, digest: str | None, target: Target) -> bool:
        looked.append(device.device_id)
        return fits(device, tool, digest, target)

    monkeypatch.setattr(_Device, "fits", counting)
    # A second round: all hold one of 4, so the one picked longest ago comes first, every time.
    assert [pick(registry) for _ in ids[:50]] == ids[:50]
    assert len(looked) == 50, f"{len(looked)} devices looked at for 50 picks"
    # A busier fleet that is not uniform: the one device left with a single task wins at once.
    looked.clear()
    assert [pick(registry) for _ in ids[50:]] == ids[50:]
    registry.get("dev-007").in_flight = 1  # type: ignore[union-attr]
    looked.clear()
    assert pick(registry) == "dev-007" and looked == ["dev-007"]
    # Devices that do not fit are passed over: the pick goes on to the one that does.
    chosen = registry.select("noop", "d1", DeviceTarget(device="dev-123"), ())
    assert chosen is not None and chosen.device_id == "dev-123"
