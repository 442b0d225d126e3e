"""LLMCompiler-style workloads for ``benchmarks.llm_bench``: plans, tool latencies, replies.

The shapes follow the three benchmarks of the LLMCompiler paper: HotpotQA (two
independent searches, then an answer), Movie Recommendation (eight independent searches)
and ParallelQA (four searches feeding dependent math steps). Search latencies are drawn
from 0.3-1.2 s with a fixed seed; math steps take 0.2 s. Every reply the model would
write (the plan, the joiner's answer, each ReAct step) is scripted here, so all three
strategies receive the same text at the same token rate.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tools import Tool, tool

__all__ = ["SHAPES", "Shape", "make_tools"]

MATH_SECONDS = 0.2


@dataclass(frozen=True)
class Shape:
    """One workload: the plan's tasks (plan notation, ``$tN`` references) and tool latencies."""

    name: str
    request: str
    tasks: list[dict[str, Any]]
    latency: dict[str, float]
    answer: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def plan_text(self) -> str:
        return json.dumps({"tasks": self.tasks})

    def join_text(self) -> str:
        return json.dumps({"thought": "The results answer the question.", "action": "finish",
                           "answer": self.answer, "reason": ""})  # fmt: skip

    def react_texts(self) -> list[str]:
        """One ReAct reply per task (thought + action), then the final answer."""
        steps = [
            json.dumps(
                {
                    "thought": f"Next I need {t['tool']} for {_subject(t)}.",
                    "action": {"tool": t["tool"], "args": t["args"]},
                }
            )
            for t in self.tasks
        ]
        final = {"thought": "I have everything I need.", "action": {"tool": "finish", "answer": self.answer}}
        return [*steps, json.dumps(final)]

    @property
    def critical_tool_seconds(self) -> float:
        """The longest chain of tool latencies: the least any schedule needs after planning."""
        finish: dict[str, float] = {}
        for t in self.tasks:
            deps = [finish[d] for d in _references(t["args"])]
            finish[t["id"]] = max(deps, default=0.0) + self.latency[_key(t)]
        return max(finish.values())


def _subject(task: Mapping[str, Any]) -> str:
    return str(task["args"].get("query") or task["args"].get("problem"))


def _key(task: Mapping[str, Any]) -> str:
    return _subject(task)


def _references(value: Any) -> list[str]:
    if isinstance(value, str) and value.startswith("$t"):
        return [value[1:]]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _search(task_id: str, query: str) -> dict[str, Any]:
    return {"id": task_id, "tool": "search", "args": {"query": query}, "deps": []}


def _math(task_id: str, problem: str, values: list[str]) -> dict[str, Any]:
    return {"id": task_id, "tool": "math", "args": {"problem": problem, "values": values}, "deps": []}


def _build(name: str, request: str, tasks: list[dict[str, Any]], answer: str, seed: int) -> Shape:
    rng = random.Random(seed)
    latency = {}
    for t in tasks:
        latency[_key(t)] = MATH_SECONDS if t["tool"] == "math" else round(rng.uniform(0.3, 1.2), 3)
    return Shape(name, request, tasks, latency, answer)


MOVIES = ["Inception", "Heat", "Alien", "Up", "Fargo", "Drive", "Her", "Coco"]

SHAPES: tuple[Shape, ...] = (
    _build(
        "hotpotqa",
        "Were Scott Derrickson and Ed Wood of the same nationality?",
        [_search("t1", "Scott Derrickson nationality"), _search("t2", "Ed Wood nationality")],
        "Yes, both are American.",
        seed=1,
    ),
    _build(
        "movie",
        "Which of these movies is most similar to The Matrix: " + ", ".join(MOVIES) + "?",
        [_search(f"t{i}", f"{movie} plot and genre") for i, movie in enumerate(MOVIES, 1)],
        "Inception is the most similar.",
        seed=2,
    ),
    _build(
        "parallelqa",
        "If the Eiffel Tower were as tall as the Empire State Building plus the Burj Khalifa, how "
        "much taller would that be than Tokyo Tower and Big Ben combined?",
        [
            _search("t1", "Empire State Building height"),
            _search("t2", "Burj Khalifa height"),
            _search("t3", "Tokyo Tower height"),
            _search("t4", "Big Ben height"),
            _math("t5", "sum of two heights", ["$t1", "$t2"]),
            _math("t6", "difference with the sum of two heights", ["$t5", "$t3", "$t4"]),
        ],
        "About 849 m taller.",
        seed=3,
    ),
)


def make_tools(shape: Shape) -> tuple[list[Tool], dict[str, int]]:
    """``search`` and ``math`` sleeping the shape's latencies, and a count of calls per key."""
    counts: dict[str, int] = {}

    @tool(read_only=True)
    async def search(query: str) -> str:
        """Search the web; returns the best snippet."""
        counts[query] = counts.get(query, 0) + 1
        await asyncio.sleep(shape.latency[query])
        return f"{query}: 42"

    @tool(read_only=True)
    async def math(problem: str, values: list[str | float]) -> float:
        """Solve a small arithmetic problem over the given values."""
        counts[problem] = counts.get(problem, 0) + 1
        await asyncio.sleep(shape.latency[problem])
        return float(len(values))

    return [search, math], counts
