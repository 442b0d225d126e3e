"""RunPolicy: an Orchestrator's run policy, built and checked once, then shared by its runs."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import orchestrator.scheduler as scheduler_module
import orchestrator.scheduling as scheduling
from orchestrator import Orchestrator, Task, TaskGraph
from orchestrator.scheduling import RunPolicy
from tools import tool


@tool
async def echo(value: Any) -> Any:
    return value


@tool(retries=1)
async def flaky(marker: str) -> str:
    raise ConnectionError(f"{marker} unreachable")


def test_the_orchestrator_builds_one_frozen_policy_from_its_arguments() -> None:
    limits = {"echo": 2}
    orchestrator = Orchestrator(
        [echo], max_concurrency=4, tool_limits=limits, default_retries=3, env=["HOME"]
    )
    policy = orchestrator.policy
    assert (policy.max_concurrency, dict(policy.tool_limits), policy.default_retries) == (4, {"echo": 2}, 3)
    assert policy.env_names == ("HOME",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.default_retries = 0  # type: ignore[misc]
    limits["echo"] = 1000  # the caller's dict is not the policy's
    assert policy.tool_limits["echo"] == 2
    with pytest.raises(TypeError):
        policy.tool_limits["echo"] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be >= 1, got 0"),
        ({"tool_limits": {"http": 0}}, "tool_limits['http'] must be >= 1, got 0"),
        ({"failure_policy": "retry"}, "failure_policy must be 'fail_fast', 'continue' or 'replan'"),
        ({"failure_policy": "replan"}, "failure_policy='replan' needs a replanner="),
    ],
)
def test_a_bad_policy_is_refused_when_built_by_either(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        RunPolicy(**arguments)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        Orchestrator([echo], **arguments)


async def test_runs_use_the_policy_the_orchestrator_was_built_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPWEAVE_POLICY_TEST", "seen")
    orchestrator = Orchestrator([echo, flaky], env=["STEPWEAVE_POLICY_TEST"], default_backoff=0.001)
    graph = TaskGraph(
        [
            Task(id="env", tool="echo", args={"value": "${{ env.STEPWEAVE_POLICY_TEST }}"}),
            Task(id="retried", tool="flaky", args={"marker": "x"}),
        ]
    )
    result = await orchestrator.run(graph)
    assert result.tasks["env"].output == "seen"
    assert result.tasks["retried"].attempts == 2  # the tool's retries=1, backed off by the policy


def test_public_names_stay_importable_from_the_scheduler_module() -> None:
    for name in scheduling.__all__:
        assert getattr(scheduler_module, name) is getattr(scheduling, name)
    assert set(scheduling.__all__) <= set(scheduler_module.__all__)
