"""Whoever opens a resource closes it: the orchestrator's sync-tool threads end with it.

Threads are counted by name (``stepweave-tool-*``); a closed pool's idle workers exit on
their own, so each test joins them with a deadline instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from orchestrator import Orchestrator, Task
from tools import tool

#: Three sync calls that must overlap: the pool has to start three threads.
WIDTH = 3


def _tool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("stepweave-tool")}


def _ended(threads: set[threading.Thread], within: float = 10.0) -> set[threading.Thread]:
    """Join each of ``threads`` (``within`` seconds in all); return those still alive."""
    for thread in threads:
        thread.join(within / max(len(threads), 1))
    return {t for t in threads if t.is_alive()}


@pytest.fixture
def baseline() -> Iterator[set[threading.Thread]]:
    yield _tool_threads()


def _orchestrator(names: list[str]) -> Orchestrator:
    together = threading.Barrier(WIDTH, timeout=10)

    @tool
    def blocking(n: int) -> int:
        names.append(threading.current_thread().name)
        together.wait()  # all WIDTH calls at once, each on its own thread
        return n

    return Orchestrator(tools=[blocking])


def _graph() -> list[Task]:
    return [Task(id=f"t{i}", tool="blocking", args={"n": i}) for i in range(WIDTH)]


def test_run_sync_closes_its_threads(baseline: set[threading.Thread]) -> None:
    for _ in range(3):
        names: list[str] = []
        result = _orchestrator(names).run_sync(_graph())
        assert result.ok, result
        assert len(set(names)) == WIDTH and all(n.startswith("stepweave-tool") for n in names)
        assert _ended(_tool_threads() - baseline) == set()
    assert _tool_threads() <= baseline


async def test_async_with_closes_its_threads(baseline: set[threading.Thread]) -> None:
    for _ in range(3):
        names: list[str] = []
        async with _orchestrator(names) as orchestrator:
            assert (await orchestrator.run(_graph())).ok
            assert (await orchestrator.run(_graph())).ok  # one pool serves every run in the block
            assert len(_tool_threads() - baseline) == WIDTH
        assert _ended(_tool_threads() - baseline) == set()


async def test_without_async_with_runs_work_and_aclose_releases(baseline: set[threading.Thread]) -> None:
    names: list[str] = []
    orchestrator = _orchestrator(names)
    assert (await orchestrator.run(_graph())).ok
    await orchestrator.aclose()
    assert _ended(_tool_threads() - baseline) == set()
    # Closed is not broken: the next run opens a pool again.
    assert (await orchestrator.run(_graph())).ok
    await orchestrator.aclose()
    assert _ended(_tool_threads() - baseline) == set()


async def test_an_orchestrator_is_not_reentrant() -> None:
    orchestrator = _orchestrator([])
    async with orchestrator:
        with pytest.raises(RuntimeError, match="not reentrant"):
            async with orchestrator:
                pass
    async with orchestrator:  # but reusable
        pass


def _thread_name() -> str:
    return threading.current_thread().name


async def test_blocking_work_a_tool_starts_runs_on_the_same_threads(baseline: set[threading.Thread]) -> None:
    from tools.builtin import python, register_callable, unregister_callable

    inner = tool(name="inner")(_thread_name)

    @tool
    async def outer() -> str:
        return str(await inner.invoke({}))  # a sync tool called from a tool (a loop body)

    register_callable(_thread_name, name="tests.lifetimes:thread_name")
    try:
        async with Orchestrator(tools=[outer, python]) as orchestrator:
            result = await orchestrator.run(
                [
                    Task(id="o", tool="outer"),
                    Task(id="p", tool="python", args={"target": "tests.lifetimes:thread_name"}),
                ]
            )
    finally:
        unregister_callable("tests.lifetimes:thread_name")
    assert result.ok, result
    assert result.tasks["o"].output.startswith("stepweave-tool")
    assert result.tasks["p"].output.value.startswith("stepweave-tool")
    assert _ended(_tool_threads() - baseline) == set()
