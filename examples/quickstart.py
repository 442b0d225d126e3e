"""Quick start: parallel branches, a condition and a retried flaky tool.

Run it with ``python examples/quickstart.py``. No network or API key needed: the tools
simulate latency with ``asyncio.sleep``.

    probe_web ─┐
    probe_db ──┼─> summarize ─> page_oncall (only if something is down)
    flaky_queue┘   (retried: fails twice, then answers)
"""

from __future__ import annotations

import asyncio

from orchestrator import Orchestrator, Task, TaskGraph
from tools import ToolContext, tool

LATENCY = {"web": 0.20, "db": 0.30, "queue": 0.05}


@tool
async def probe(service: str) -> dict[str, object]:
    """Check a service and report whether it is up.

    Args:
        service: Name of the service to check.
    """
    await asyncio.sleep(LATENCY[service])
    return {"service": service, "up": service != "db", "latency_ms": int(LATENCY[service] * 1000)}


_queue_attempts = 0


@tool(retries=3)
async def probe_queue(ctx: ToolContext) -> dict[str, object]:
    """Check the message queue; its endpoint drops the first two connections."""
    global _queue_attempts
    _queue_attempts += 1
    await asyncio.sleep(LATENCY["queue"])
    if _queue_attempts < 3:
        raise ConnectionError(f"queue refused connection (attempt {ctx.attempt})")
    return {"service": "queue", "up": True, "latency_ms": 50}


@tool
async def summarize(checks: list[dict[str, object]]) -> dict[str, object]:
    """Combine probe results into one verdict."""
    down = [str(c["service"]) for c in checks if not c["up"]]
    return {"healthy": not down, "down": down}


@tool
async def page_oncall(message: str) -> str:
    """Page whoever is on call (simulated)."""
    return f"paged on-call: {message}"


def build_graph() -> TaskGraph:
    return TaskGraph(
        tasks=[
            Task(id="probe_web", tool="probe", args={"service": "web"}),
            Task(id="probe_db", tool="probe", args={"service": "db"}, timeout=5),
            Task(id="probe_queue", tool="probe_queue", backoff=0.05),
            Task(
                id="summarize",
                tool="summarize",
                args={
                    "checks": [
                        "${{ steps.probe_web.output }}",
                        "${{ steps.probe_db.output }}",
                        "${{ steps.probe_queue.output }}",
                    ]
                },
            ),
            Task(
                id="page_oncall",
                tool="page_oncall",
                args={"message": "down: ${{ steps.summarize.output.down | join(', ') }}"},
                when="${{ not steps.summarize.output.healthy }}",
            ),
        ]
    )


def main() -> int:
    orchestrator = Orchestrator(tools=[probe, probe_queue, summarize, page_oncall])
    result = orchestrator.run_sync(build_graph())
    print(f"run {result.run_id}: {result.status.value} in {result.duration:.2f}s")
    for task in result.tasks.values():
        took = f"{task.duration:.2f}s" if task.duration is not None else "-"
        print(f"  {task.id:<12} {task.status.value:<10} attempts={task.attempts} {took:>6}  {task.output}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
