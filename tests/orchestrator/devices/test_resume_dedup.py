"""An orchestrator resumed from its journal re-dispatches in-flight work under a new key
(same run and task, attempt incremented): the agent answers from the work it already
does or did, and never runs the tool twice."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.devices import DeviceAgent, Topics
from orchestrator.devices.protocol import Accepted, Result, encode

from .conftest import raw_client
from .test_messages import GatedCounter, next_reply, request


async def test_a_resumed_run_gets_the_work_already_done(
    broker_url: str, namespace: str, agent_factory: Callable[..., DeviceAgent]
) -> None:
    counter = GatedCounter()
    count, release = counter.tool, counter.release

    topics = Topics(namespace)
    async with agent_factory("dedup", [count]), raw_client(broker_url) as orchestrator:
        await orchestrator.subscribe(topics.all_results("orch-test"), qos=1)
        await orchestrator.publish(topics.tasks("dedup"), encode(request()), qos=1)
        assert isinstance(await next_reply(orchestrator), Accepted)
        # The orchestrator died; its resumed successor (a new process, a new orchestrator
        # id) sends the same task of the same run as attempt 2, while it still runs.
        resumed = request(orchestrator="orch-test", key="r1/t#2", attempt=2, nonce="n2")
        await orchestrator.publish(topics.tasks("dedup"), encode(resumed), qos=1)
        accepted = await next_reply(orchestrator)
        assert isinstance(accepted, Accepted) and accepted.attempt == 2
        release.set()
        result = await next_reply(orchestrator)
        assert isinstance(result, Result) and result.output == 1
        assert (result.key, result.attempt, result.nonce) == ("r1/t#2", 2, "n2")
        # And once more after it finished (a second crash and resume): the cached result.
        later = request(key="r1/t#3", attempt=3, nonce="n3")
        await orchestrator.publish(topics.tasks("dedup"), encode(later), qos=1)
        again = await next_reply(orchestrator)
        # Another task of the same run is new work, of course.
        await orchestrator.publish(topics.tasks("dedup"), encode(request(task_id="u", key="r1/u#1")), qos=1)
        while not isinstance(other := await next_reply(orchestrator), Result):
            pass
    assert isinstance(again, Result) and again.output == 1
    assert (again.key, again.attempt, again.nonce) == ("r1/t#3", 3, "n3")
    assert other.output == 2 and other.key == "r1/u#1"
    assert counter.calls == 2
