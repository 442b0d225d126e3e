"""Child process of the kill-during-writes test: short journaled runs, one after another,
until it is killed. Usage: ``python crash_child.py JOURNAL RUN_ID_PREFIX``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_tools import mark

from orchestrator import Orchestrator, Task, TaskGraph


def graph(n: int) -> TaskGraph:
    """A chain of 24 with a fan of 4 after each link: 120 steps, many ending together."""
    tasks: list[Task] = []
    for link in range(24):
        deps = (f"c{link - 1}",) if link else ()
        tasks.append(Task(id=f"c{link}", tool="mark", args={"name": f"c{link}"}, deps=deps))
        tasks += [
            Task(id=f"f{link}_{i}", tool="mark", args={"name": f"f{link}_{i}"}, deps=(f"c{link}",))
            for i in range(4)
        ]
    return TaskGraph(tasks, name=f"burst-{n}")


async def main(journal: str, prefix: str) -> None:
    orchestrator = Orchestrator(tools=[mark], journal=journal, max_threads=4)
    n = 0
    while True:
        result = await orchestrator.run(graph(n), run_id=f"{prefix}-{n}")
        assert result.ok, result.error
        n += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
