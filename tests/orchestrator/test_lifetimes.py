"""Whoever opens a resource closes it: the orchestrator's sync-tool threads end with it.

Each test records the thread objects its own tool calls ran on, and checks that those end:
a closed pool's idle workers exit on their own, so the test joins them with a deadline
instead of sleeping. (Not a count of every ``stepweave-tool`` thread in the process: other
tests' pools may start threads at any time while this one runs.)
"""

from __future__ import annotations

import threading

import pytest

from orchestrator import Orchestrator, Task
from tools import tool

#: Three sync calls that must overlap: the pool has to start three threads.
WIDTH = 3


def _ended(threads: set[threading.Thread], within: float = 10.0) -> set[threading.Thread]:
    """Join each of ``threads`` (``within`` seconds in all); return those still alive."""
    for thread in threads:
        thread.join(within / max(len(threads), 1))
    return {t for t in threads if t.is_alive()}


def _orchestrator(used: list[threading.Thread]) -> Orchestrator:
    together = threading.Barrier(WIDTH, timeout=10)

    @tool
    def blocking(n: int) -> int:
        used.append(threading.current_thread())
        together.wait()  # all WIDTH calls at once, each on its own thread
        return n

    return Orchestrator(tools=[blocking])


def _graph() -> list[Task]:
    return [Task(id=f"t{i}", tool="blocking", args={"n": i}) for i in range(WIDTH)]


def test_run_sync_closes_its_threads() -> None:
    for _ in range(3):
        used: list[threading.Thread] = []
        result = _orchestrator(used).run_sync(_graph())
        assert result.ok, result
        assert len(set(used)) == WIDTH and all(t.name.startswith("stepweave-tool") for t in used)
        assert _ended(set(used)) == set()


async def test_async_with_closes_its_threads() -> None:
    for _ in range(3):
        used: list[threading.Thread] = []
        async with _orchestrator(used) as orchestrator:
            assert (await orchestrator.run(_graph())).ok
            pool = orchestrator.local_executor._pool
            assert pool is not None
            assert (await orchestrator.run(_graph())).ok
            assert orchestrator.local_executor._pool is pool  # one pool serves every run in the block
            # (It may add a thread for the second run: a worker that has just finished is not
            # idle yet to ThreadPoolExecutor. Every thread is the pool's, and all must end.)
            assert len(used) == 2 * WIDTH and len(set(used)) >= WIDTH
            assert _ended(set(used), within=0.01) == set(used)  # kept while the block is open
        assert _ended(set(used)) == set()


async def test_without_async_with_runs_work_and_aclose_releases() -> None:
    used: list[threading.Thread] = []
    orchestrator = _orchestrator(used)
    assert (await orchestrator.run(_graph())).ok
    await orchestrator.aclose()
    assert _ended(set(used)) == set()
    # Closed is not broken: the next run opens a pool again.
    assert (await orchestrator.run(_graph())).ok
    await orchestrator.aclose()
    assert _ended(set(used)) == set()


async def test_an_orchestrator_is_not_reentrant() -> None:
    orchestrator = _orchestrator([])
    async with orchestrator:
        with pytest.raises(RuntimeError, match="not reentrant"):
            async with orchestrator:
                pass
    async with orchestrator:  # but reusable
        pass


#: Threads the python tool's callable ran on (a module-level function: callables are named).
_seen: list[threading.Thread] = []


def _thread_name() -> str:
    _seen.append(threading.current_thread())
    return threading.current_thread().name


async def test_blocking_work_a_tool_starts_runs_on_the_same_threads() -> None:
    from tools.builtin import python, register_callable, unregister_callable

    inner = tool(name="inner")(_thread_name)

    @tool
    async def outer() -> str:
        return str(await inner.invoke({}))  # a sync tool called from a tool (a loop body)

    _seen.clear()
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
    assert len(_seen) == 2 and _ended(set(_seen)) == set()  # the run's pool, closed with it
