"""The ``wait`` tool."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tools import ToolArgumentError, ToolContext, ToolError
from tools.builtin import WaitResult, wait


class Progress:
    def __init__(self) -> None:
        self.fractions: list[float | None] = []

    def __call__(self, fraction: float | None, message: str) -> None:
        self.fractions.append(fraction)


async def test_seconds_reports_progress() -> None:
    progress = Progress()
    started = time.monotonic()
    result = await wait.invoke({"seconds": 0.2}, ToolContext(report=progress))
    assert isinstance(result, WaitResult)
    assert time.monotonic() - started >= 0.2
    assert result.waited_s >= 0.2
    assert progress.fractions[0] == 0.0 and progress.fractions[-1] == 1.0
    assert len(progress.fractions) > 3
    numbers = [f for f in progress.fractions if f is not None]
    assert numbers == sorted(numbers)


async def test_until_iso_timestamp() -> None:
    target = datetime.now(UTC) + timedelta(seconds=0.2)
    result = await wait.invoke({"until": target.isoformat()})
    assert datetime.now(UTC) >= target
    assert result.until == target
    assert 0.1 < result.waited_s < 2


async def test_until_in_the_past_returns_at_once() -> None:
    result = await wait.invoke({"until": "2000-01-01T00:00:00Z"})
    assert result.waited_s < 0.1


async def test_zero_seconds() -> None:
    result = await wait.invoke({"seconds": 0})
    assert result.waited_s < 0.1


@pytest.mark.parametrize(
    ("args", "given"),
    [({}, "neither"), ({"seconds": 1, "until": "2000-01-01T00:00:00Z"}, "both")],
)
async def test_exactly_one_of_seconds_or_until(args: dict[str, object], given: str) -> None:
    with pytest.raises(ToolError, match=f"exactly one of `seconds` or `until`; got {given}") as info:
        await wait.invoke(args)
    assert info.value.retryable is False


@pytest.mark.parametrize("args", [{"seconds": -1}, {"until": "tomorrow-ish"}])
async def test_bad_values_are_rejected_by_the_schema(args: dict[str, object]) -> None:
    with pytest.raises(ToolArgumentError):
        await wait.invoke(args)
