"""Opt-in: the planner end to end against a real OpenAI-compatible server.

    STEPWEAVE_TEST_BASE_URL=http://localhost:8080/v1 STEPWEAVE_TEST_MODEL=qwen2.5-7b \\
        .venv/bin/pytest -m live_llm tests/planners/llm

docs/llm.md has the recipe for a small model on llama-cpp-python's server that this was
run against. Only the shape is asserted (the plan parses, uses registered tools, runs, an answer comes
back): what a real model writes is not ours to fix in a test.
"""

from __future__ import annotations

import os

import pytest

from orchestrator import Orchestrator
from planners.llm import LLMPlanner, ServerMemory
from tools import tool

BASE_URL = os.environ.get("STEPWEAVE_TEST_BASE_URL")

pytestmark = [
    pytest.mark.live_llm,
    pytest.mark.skipif(not BASE_URL, reason="set STEPWEAVE_TEST_BASE_URL to a real OpenAI-compatible server"),
    pytest.mark.timeout(300),
]


@tool(read_only=True)  # pure arithmetic: planned calls run without an approver
def add(a: float, b: float) -> float:
    """Add two numbers and return the sum."""
    return a + b


@tool(read_only=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers and return the product."""
    return a * b


async def test_a_real_model_plans_runs_and_answers() -> None:
    model = os.environ.get("STEPWEAVE_TEST_MODEL") or os.environ.get("STEPWEAVE_MODEL") or "default"
    orchestrator = Orchestrator([add, multiply], failure_policy="continue")
    async with LLMPlanner(
        model,
        base_url=BASE_URL,
        api_key=os.environ.get("STEPWEAVE_TEST_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        server_memory=ServerMemory(),
        timeout=240,
    ) as planner:
        result = await planner.ask("What is (3 + 4) * 5? Use the tools for the arithmetic.", orchestrator)
    tasks = [t for plan in result.plans for t in plan.tasks]
    assert tasks, "the plan has tasks"
    assert {t.tool for t in tasks} <= {"add", "multiply"}
    assert all(r.attempts >= 1 for r in result.run_result.tasks.values())
    assert result.answer.strip()
    assert result.usage.calls
