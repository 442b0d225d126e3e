"""``stepweave ask --mcp NAME=CMD``: the model is offered the server's tools; a tool the
server does not annotate read-only needs approval (here, with no terminal: refused)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

from planners.llm.testing import OpenAITestServer, ScriptedReply

from .conftest import server_argv

ROOT = Path(__file__).resolve().parents[3]


async def test_ask_offers_mcp_tools_and_asks_before_one_that_may_act(tmp_path: Path) -> None:
    async with OpenAITestServer() as llm:
        llm.queue(
            ScriptedReply.plan(
                [
                    {"id": "t1", "tool": "t.pid"},
                    {"id": "t2", "tool": "t.add", "args": {"a": 1, "b": 2}, "deps": ["t1"]},
                ]
            )
        )
        llm.queue(ScriptedReply.plan([]))  # the replan after the refusal: nothing more to do
        llm.queue(ScriptedReply.finish("done"))
        command = shlex.join(server_argv())
        # A process of its own, as a user runs it (the CLI runs its own event loop).
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator.cli", "ask", "pid and sum", "--mcp", f"t={command}", "--json",
            "--model", "m", "--base-url", llm.base_url, "--response-format", "json_object", "--timeout", "60",
            cwd=tmp_path, stdout=PIPE, stderr=PIPE,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENAI_API_KEY": "sk-test",
                 "PYTHONPATH": str(ROOT), "STEPWEAVE_JOURNAL": str(tmp_path / "journal.sqlite3")},
        )  # fmt: skip
        stdout, stderr = (data.decode() for data in await asyncio.wait_for(process.communicate(), 60))
        prompt = json.dumps(llm.requests[0].body)
    assert "t.add" in prompt and "t.pid" in prompt  # the model was offered the server's tools
    ended = {
        e["task_id"]: e
        for e in (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
        if e.get("event") == "task_ended"
    }
    assert isinstance(ended["t1"]["output"]["result"], int)  # read-only: ran without asking
    assert ended["t2"]["status"] != "succeeded"  # may act: refused without a terminal
    assert process.returncode == 1 and "not approved" in stderr, stderr
