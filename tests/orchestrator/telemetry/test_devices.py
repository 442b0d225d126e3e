"""A device task's span joins the orchestrator's trace through the MQTT call message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from orchestrator import DeviceTarget, Orchestrator, Task
from orchestrator.devices import DeviceAgent, DeviceExecutor, LocalBroker, find_mosquitto
from orchestrator.devices.protocol import TaskRequest, decode
from tools import tool

from .conftest import Otel


@tool
async def whoami() -> str:
    """Name the device."""
    return "edge"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    # One broker: Mosquitto when installed (as users run it), else the embedded one.
    with LocalBroker(kind="mosquitto" if find_mosquitto() else "amqtt") as broker:
        yield broker


async def test_a_device_span_has_the_orchestrators_trace_id(otel: Otel, broker: LocalBroker) -> None:
    namespace = f"otel-{uuid.uuid4().hex[:8]}"
    agent = DeviceAgent(
        "edge",
        tools=[whoami],
        broker=broker.url,
        namespace=namespace,
        heartbeat_interval=0.2,
        backoff=(0.05, 0.5),
    )
    executor = DeviceExecutor(
        broker=broker.url, namespace=namespace, ack_timeout=0.5, device_wait=2.0, backoff=(0.05, 0.5)
    )
    async with agent, executor as devices:
        await devices.wait_for_devices(ids=["edge"])
        orchestrator = Orchestrator(tools=[whoami], executors={"device": devices})
        result = await orchestrator.run(
            [Task(id="remote", tool="whoami", target=DeviceTarget(device="edge"))]
        )
    assert result.ok, result.error

    (run,) = otel.named("run")
    (attempt,) = otel.named("task whoami")
    (dispatch,) = otel.named("dispatch whoami")
    (call,) = otel.named("device call whoami")
    trace_id = run.context.trace_id
    assert {s.context.trace_id for s in (attempt, dispatch, call)} == {trace_id}
    # run → task attempt → dispatch (orchestrator) → device call (agent, via MQTT)
    assert attempt.parent is not None and attempt.parent.span_id == run.context.span_id
    assert dispatch.parent is not None and dispatch.parent.span_id == attempt.context.span_id
    assert call.parent is not None and call.parent.span_id == dispatch.context.span_id
    assert call.parent.is_remote
    assert call.attributes is not None and call.attributes["stepweave.device.id"] == "edge"
    assert dispatch.attributes is not None and dispatch.attributes["stepweave.task.status"] == "succeeded"


def _request(**fields: object) -> bytes:
    base: dict[str, object] = {
        "v": 1, "type": "request", "orchestrator": "o", "run_id": "r", "task_id": "t", "key": "k",
        "attempt": 1, "nonce": "n", "tool": "whoami", "timeout": 1.0,
    }  # fmt: skip
    # Raw JSON, as a forger would send it: nothing of ours validated it on the way out.
    return json.dumps({**base, **fields}).encode()


@pytest.mark.parametrize(
    ("traceparent", "tracestate"),
    [
        ("00-" + "0" * 32 + "-" + "1" * 16 + "-01", "a=b\x00"),  # all-zero trace id, NUL
        ("ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "x" * 100_000),  # unknown version, oversized state
        ("00-" + "a" * 32 + "-" + "b" * 16 + "-01\n", "a=b\nc"),  # trailing newline, control character
        ("00-" + "A" * 32 + "-" + "b" * 16 + "-01", ",".join(["a=b"] * 40)),  # upper case, 40 members
    ],
)
def test_a_forged_trace_context_is_dropped_not_rejected(traceparent: str, tracestate: str) -> None:
    request = decode(_request(traceparent=traceparent, tracestate=tracestate), TaskRequest)
    assert (request.traceparent, request.tracestate) == ("", "")


def test_a_wrong_typed_trace_context_is_dropped() -> None:
    request = decode(_request(traceparent={"x": [1, 2]}, tracestate=7), TaskRequest)
    assert (request.traceparent, request.tracestate) == ("", "")


def test_a_valid_trace_context_is_kept() -> None:
    traceparent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    request = decode(_request(traceparent=traceparent, tracestate="vendor=1,other=2"), TaskRequest)
    assert (request.traceparent, request.tracestate) == (traceparent, "vendor=1,other=2")
    # and an orchestrator that does not trace sends none, which an agent reads as none
    assert decode(_request(), TaskRequest).traceparent == ""
