"""`stepweave ask` as a real process against the OpenAI-compatible test server."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from planners.llm.testing import OpenAITestServer, ScriptedReply

from .test_cli import ROOT, stepweave_command

TOOLS = "examples/example_tools.py"


async def ask(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop the test server answers on."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    process = await asyncio.create_subprocess_exec(
        *stepweave_command(), "ask", *args,
        cwd=ROOT, env={**base, "COLUMNS": "200", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def server_env(server: OpenAITestServer) -> dict[str, str]:
    return {"OPENAI_BASE_URL": server.base_url, "STEPWEAVE_MODEL": server.model}


async def test_without_a_model_server_it_says_how_to_configure_one() -> None:
    code, _, stderr = await ask("What is 2+2?", "--tools", TOOLS)
    assert code == 2
    assert "OPENAI_API_KEY" in stderr and "OPENAI_BASE_URL" in stderr


async def test_ask_plans_runs_and_answers(tmp_path: Path) -> None:
    plan = [
        {"id": "t1", "tool": "wait", "args": {"seconds": 0.3}},
        {"id": "t2", "tool": "wait", "args": {"seconds": 0.3}},
        {"id": "t3", "tool": "wait", "args": {"seconds": 0}, "deps": ["t1", "t2"]},
    ]
    report = tmp_path / "ask.html"
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan(plan), ScriptedReply.finish("both waits are done"))
        started = time.monotonic()
        code, stdout, stderr = await ask(
            "Wait twice, then once more", "--report", str(report), env=server_env(server)
        )
        took = time.monotonic() - started
        assert code == 0, stderr
        assert server.pending == 0
    assert stdout.rstrip().endswith("both waits are done")
    # The DAG is shown as it forms, then the account of the model calls.
    assert "+ t1: wait" in stderr and "+ t3: wait" in stderr and "after t1, t2" in stderr
    assert "2 model call(s)" in stderr and "0 replan(s)" in stderr
    assert took < 30
    html = report.read_text()
    assert "t1" in html and "t3" in html


async def test_json_mode_streams_events_and_ends_with_the_answer() -> None:
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]),
            ScriptedReply.finish("done waiting"),
        )
        code, stdout, stderr = await ask("Wait", "--json", env=server_env(server))
    assert code == 0, stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    kinds = [line["event"] for line in lines]
    assert "planner_call_ended" in kinds and "task_ended" in kinds
    assert lines[-1]["event"] == "answer" and lines[-1]["answer"] == "done waiting"


async def test_plan_only_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "never.txt"
    plan = [{"id": "t1", "tool": "write_file", "args": {"path": str(target), "content": "x"}}]
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan(plan))
        code, stdout, stderr = await ask("Write a file", "--plan-only", env=server_env(server))
    assert code == 0, stderr
    assert "+ t1: write_file" in stdout and "flowchart TD" in stdout
    assert not target.exists()


async def test_garbage_from_the_model_fails_with_a_reason() -> None:
    async with OpenAITestServer() as server:
        server.queue(*[ScriptedReply(content="I cannot help with that.") for _ in range(4)])
        code, _, stderr = await ask("Do something", "--plan-only", env=server_env(server))
    assert code == 1
    assert "no usable plan" in stderr


async def test_with_local_agents_every_planned_task_runs_on_a_device() -> None:
    plan = [
        {"id": "t1", "tool": "health_check", "args": {"check": "disk"}},
        {"id": "t2", "tool": "health_check", "args": {"check": "uptime"}},
    ]
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan(plan), ScriptedReply.finish("disk and uptime are fine"))
        code, stdout, stderr = await ask(
            "Is the lab healthy?", "--tools", "examples/devices/device_tools.py",
            "--local-agents", "2", "--local-label", "site=lab", "--on", "site=lab", "--json",
            env=server_env(server),
        )  # fmt: skip
        plan_request = server.completions[0].body
    assert code == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    ended = {e["task_id"]: e for e in lines if e["event"] == "task_ended"}
    assert {ended[t]["output"]["device"] for t in ("t1", "t2")} <= {"local-1", "local-2"}
    assert lines[-1]["answer"] == "disk and uptime are fine"
    # The model was offered the agents' tools only, not the local built-ins.
    offered = json.dumps(plan_request)
    assert "health_check" in offered and '"shell"' not in offered


async def test_on_without_devices_is_a_usage_error() -> None:
    async with OpenAITestServer() as server:
        code, _, stderr = await ask("x", "--on", "site=lab", env=server_env(server))
    assert code == 2 and "--broker" in stderr
