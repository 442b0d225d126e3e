"""Fixtures for the LLM planner tests: the OpenAI-compatible test server, planners and tools.

No test here talks to a hosted model: every planner points at ``OpenAITestServer`` on
loopback, through the real ``openai`` client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from orchestrator import Orchestrator
from planners.llm import LLMPlanner, ServerMemory
from planners.llm.testing import OpenAITestServer
from tools import Tool, ToolError, tool

MODEL = "test-model"
API_KEY = "sk-test"


@dataclass
class Calls:
    """What the test tools were called with, and when (``time.time()``)."""

    args: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    started: dict[str, list[float]] = field(default_factory=dict)

    def record(self, name: str, **args: Any) -> None:
        self.args.setdefault(name, []).append(args)
        self.started.setdefault(name, []).append(time.time())

    def count(self, name: str) -> int:
        return len(self.args.get(name, []))


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def toolset(calls: Calls) -> list[Tool]:
    """search (async), add (sync), count_words, and broken (always fails, permanently).

    All read-only, as declared: planned calls of them run without approval (see
    test_approval.py for tools that change things).
    """

    @tool(read_only=True)
    async def search(query: str) -> str:
        """Search the web and return the best snippet.

        Args:
            query: What to look for.
        """
        calls.record("search", query=query)
        await asyncio.sleep(0.01)
        return f"snippet about {query}"

    @tool(read_only=True)
    def add(a: float, b: float) -> float:
        """Add two numbers.

        Args:
            a: The first number.
            b: The second number.
        """
        calls.record("add", a=a, b=b)
        return a + b

    @tool(read_only=True)
    def count_words(text: str) -> int:
        """Count the words in a text."""
        calls.record("count_words", text=text)
        return len(text.split())

    @tool(retries=0, read_only=True)
    async def broken(query: str) -> str:
        """A search mirror that is down (it takes a moment to say so)."""
        calls.record("broken", query=query)
        await asyncio.sleep(0.05)
        raise ToolError("mirror is down", retryable=False)

    return [search, add, count_words, broken]


@pytest.fixture
def orchestrator(toolset: list[Tool]) -> Orchestrator:
    return Orchestrator(toolset, failure_policy="continue")


@pytest.fixture
async def server() -> AsyncIterator[OpenAITestServer]:
    async with OpenAITestServer(model=MODEL) as test_server:
        yield test_server


@pytest.fixture
async def make_planner() -> AsyncIterator[Callable[..., LLMPlanner]]:
    """``make_planner(server, **options)``: a planner on that server with fast retries and its own memory."""
    planners: list[LLMPlanner] = []

    def make(test_server: OpenAITestServer, **options: Any) -> LLMPlanner:
        options.setdefault("retry_wait", 0.01)
        options.setdefault("server_memory", ServerMemory())
        planner = LLMPlanner(MODEL, base_url=test_server.base_url, api_key=API_KEY, **options)
        planners.append(planner)
        return planner

    yield make
    for planner in planners:
        await planner.aclose()


@pytest.fixture
def planner(server: OpenAITestServer, make_planner: Callable[..., LLMPlanner]) -> LLMPlanner:
    return make_planner(server)
