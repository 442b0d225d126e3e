"""LLM planning strategies compared on LLMCompiler-style plans, through the test model server.

    .venv/bin/python -m benchmarks.llm_bench                 # 50 tokens/s, ~1 minute
    .venv/bin/python -m benchmarks.llm_bench --reps 3        # medians of 3
    .venv/bin/python -m benchmarks.llm_bench --quick         # 200 tokens/s, ~15 s

Three strategies get the same scripted model text at the same token rate from
``planners.llm.testing.OpenAITestServer`` (real HTTP, real ``openai`` client). Reading the
prompt costs time too, as on a real server: by default 20 times the generation rate, the
ratio measured with llama-cpp-python and SmolLM2 on this machine (~840 tokens/s prefill,
~42 tokens/s generation; docs/llm.md). Every strategy sends what it would really send:
ReAct a system prompt describing the tools (the same signatures and summaries the planner's
prompt has) and its growing history on every call; the planner its own prompts.

- ``react``: ReAct-style, one model call per tool call, run it, repeat, then answer;
- ``plan``: the whole plan first (``LLMPlanner(stream=False)``), then the DAG, then the joiner;
- ``stream``: stepweave, tasks start as the plan streams in (``LLMPlanner()``), then the joiner.

Each run is verified: the answer came back, every tool call ran exactly once, and no
scripted reply was left over.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

from orchestrator import Orchestrator
from planners.llm import LLMPlanner, ServerMemory
from planners.llm.testing import OpenAITestServer, ScriptedReply, split_tokens
from planners.llm.tooldocs import signature, summary
from tools import Tool

from .llm_shapes import SHAPES, Shape, make_tools

MODEL = "bench-model"
STRATEGIES = ("react", "plan", "stream")
_REFERENCE = re.compile(r"^\$(t[0-9]+)$")


@dataclass(frozen=True)
class Pace:
    """How fast the simulated model is."""

    tokens_per_second: float
    first_token_seconds: float
    #: Prompt tokens read per second before the first token (None: reading is free).
    prefill_tokens_per_second: float | None = None

    def reply(self, text: str) -> ScriptedReply:
        return ScriptedReply(
            content=text,
            tokens_per_second=self.tokens_per_second,
            first_delay=self.first_token_seconds,
            prefill_tokens_per_second=self.prefill_tokens_per_second,
        )


#: Prefill over generation speed of llama-cpp-python + SmolLM2 measured here (docs/llm.md).
PREFILL_RATIO = 20.0


def react_system_prompt(tools: list[Tool]) -> str:
    """What a ReAct agent sends first on every call: the format and the tools it may use."""
    lines = [
        "Answer the question by using tools, one at a time. Reply with JSON only:",
        '{"thought": "...", "action": {"tool": NAME, "args": {...}}} to call a tool (refer to an',
        'earlier result as "$tN", N counting your tool calls from 1), or',
        '{"thought": "...", "action": {"tool": "finish", "answer": "..."}} when you know the answer.',
        "Tools:",
    ]
    lines += [f"- {signature(tool)}: {summary(tool)}" for tool in tools]
    return "\n".join(lines)


class VerificationError(RuntimeError):
    """A run did not do exactly the work the shape asks for."""


def _verify(shape: Shape, counts: dict[str, int], answer: str, server: OpenAITestServer) -> None:
    expected = {key: 1 for key in shape.latency}
    if counts != expected:
        raise VerificationError(f"{shape.name}: tool calls {counts}, expected each once")
    if answer != shape.answer:
        raise VerificationError(f"{shape.name}: answer {answer!r}")
    if server.pending:
        raise VerificationError(f"{shape.name}: {server.pending} scripted replies left over")


async def run_react(shape: Shape, server: OpenAITestServer, pace: Pace) -> float:
    """Sequential ReAct: ask for one action, run it, append the observation, repeat."""
    tools, counts = make_tools(shape)
    by_name = {t.name: t for t in tools}
    server.queue(*[pace.reply(text) for text in shape.react_texts()])
    client = AsyncOpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
    messages: list[dict[str, str]] = [
        {"role": "system", "content": react_system_prompt(tools)},
        {"role": "user", "content": shape.request},
    ]
    observations: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        for step in range(len(shape.tasks) + 1):
            response = await client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
            text = response.choices[0].message.content or ""
            action = _json(text)["action"]
            if action["tool"] == "finish":
                answer = str(action["answer"])
                break
            args = {k: _resolve(v, observations) for k, v in action["args"].items()}
            observation = await by_name[action["tool"]].invoke(args)
            observations[f"t{step + 1}"] = observation
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": f"Observation: {observation}"},
            ]
    finally:
        await client.close()
    elapsed = time.perf_counter() - started
    _verify(shape, counts, answer, server)
    return elapsed


def _json(text: str) -> dict[str, Any]:
    import json

    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def _resolve(value: Any, observations: dict[str, Any]) -> Any:
    if isinstance(value, str) and (match := _REFERENCE.match(value)):
        return observations[match.group(1)]
    if isinstance(value, list):
        return [_resolve(v, observations) for v in value]
    return value


async def run_planner(shape: Shape, server: OpenAITestServer, pace: Pace, *, stream: bool) -> float:
    """Plan (streamed or whole), run the DAG, join: ``LLMPlanner.ask``."""
    tools, counts = make_tools(shape)
    server.queue(pace.reply(shape.plan_text), pace.reply(shape.join_text()))
    orchestrator = Orchestrator(tools, failure_policy="continue")
    async with LLMPlanner(
        MODEL, base_url=server.base_url, api_key="bench", stream=stream, server_memory=ServerMemory()
    ) as planner:
        started = time.perf_counter()
        result = await planner.ask(shape.request, orchestrator)
        elapsed = time.perf_counter() - started
    _verify(shape, counts, result.answer, server)
    if not result.run_result.ok:
        raise VerificationError(f"{shape.name}: run {result.run_result.status}: {result.run_result.error}")
    return elapsed


RUNNERS: dict[str, Callable[[Shape, OpenAITestServer, Pace], Awaitable[float]]] = {
    "react": run_react,
    "plan": lambda shape, server, pace: run_planner(shape, server, pace, stream=False),
    "stream": lambda shape, server, pace: run_planner(shape, server, pace, stream=True),
}


async def measure(pace: Pace, reps: int, shapes: list[Shape]) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    async with OpenAITestServer(model=MODEL) as server:
        for _ in range(reps):
            for shape in shapes:
                for strategy in STRATEGIES:  # interleaved, so drift hits every strategy alike
                    elapsed = await RUNNERS[strategy](shape, server, pace)
                    times.setdefault((shape.name, strategy), []).append(elapsed)
                    print(f"  {shape.name:<11} {strategy:<7} {elapsed:6.2f} s", file=sys.stderr)
    return times


def render(times: dict[tuple[str, str], list[float]], pace: Pace, reps: int, shapes: list[Shape]) -> str:
    prefill = f"{pace.prefill_tokens_per_second:g} tokens/s" if pace.prefill_tokens_per_second else "free"
    head = (
        f"LLM planning, {pace.tokens_per_second:g} tokens/s, {pace.first_token_seconds:g} s to first "
        f"token, prompt reading {prefill}, median of {reps}\n\n"
        "| shape | tool calls | plan tokens | tools' critical path (s) | ReAct (s) | plan-then-execute (s) "
        "| stepweave streaming (s) | vs ReAct | vs plan-then-execute |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for shape in shapes:
        react, plan, stream = (statistics.median(times[(shape.name, s)]) for s in STRATEGIES)
        rows.append(
            f"| {shape.name} | {len(shape.tasks)} | {len(split_tokens(shape.plan_text))} "
            f"| {shape.critical_tool_seconds:.2f} | {react:.2f} | {plan:.2f} | {stream:.2f} "
            f"| {react / stream:.2f}x | {plan / stream:.2f}x |"
        )
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.llm_bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--first-token", type=float, default=0.2, help="seconds before the first token")
    parser.add_argument(
        "--prefill-ratio",
        type=float,
        default=PREFILL_RATIO,
        help=f"prompt reading speed as a multiple of the generation speed (default {PREFILL_RATIO:g}, "
        "measured here; 0: reading the prompt is free, as in earlier versions of this benchmark)",
    )
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200 tokens/s: a smoke run")
    parser.add_argument("--shapes", default=",".join(s.name for s in SHAPES))
    args = parser.parse_args(argv)
    rate = 200.0 if args.quick else args.tokens_per_second
    pace = Pace(rate, args.first_token, rate * args.prefill_ratio if args.prefill_ratio > 0 else None)
    wanted = args.shapes.split(",")
    shapes = [s for s in SHAPES if s.name in wanted]
    try:
        times = asyncio.run(measure(pace, args.reps, shapes))
    except VerificationError as exc:
        print(f"INVALID: {exc}", file=sys.stderr)
        return 2
    print(render(times, pace, args.reps, shapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
