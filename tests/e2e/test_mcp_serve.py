"""``stepweave mcp serve`` as a real process, driven by the MCP SDK's own client.

Three server processes in all (each costs about a second to start): one over stdio with
``--allow-ask`` against the scripted OpenAI-compatible server, one over streamable HTTP
without it, and the one the example of docs/mcp-server.md starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from orchestrator.journal import Journal
from planners.llm.testing import OpenAITestServer, ScriptedReply

from .test_cli import ROOT, stepweave_command

GREET = """\
name: greet people
description: Greet someone, then say it again.
inputs:
  who: {type: string, description: Whom to greet}
  times: {type: integer, default: 2}
  loud: {type: boolean, default: null}
steps:
  - id: hello
    tool: shell
    args: {argv: [echo, "hello ${{ inputs.who }}"]}
  - id: again
    tool: shell
    args: {argv: [echo, again]}
    needs: hello
outputs:
  greeting: "${{ steps.hello.output.stdout | trim }}"
  times: "${{ inputs.times }}"
"""

FAILS = """\
name: fails
steps:
  - id: fine
    tool: shell
    args: {argv: [echo, fine]}
  - id: boom
    tool: shell
    args: {argv: [sh, -c, "echo broken >&2; exit 3"], check: true}
    needs: fine
"""

GATED = """\
name: gated
description: Creates a file, after approval.
inputs:
  path: {type: string}
steps:
  - id: create
    tool: write_file
    args: {path: "${{ inputs.path }}", content: x}
    needs_approval: true
"""

SLOW = """\
name: slow
steps:
  - id: quick
    tool: wait
    args: {seconds: 0}
  - id: long
    tool: wait
    args: {seconds: 60}
    needs: quick
"""

#: Same name as GREET: served under another name, and said so.
CLASH = GREET.replace("description: Greet someone, then say it again.", "description: The other one.")

BAD = "name: bad\nsteps:\n  - id: a\n    tool: no_such_tool\n"


def workflows(root: Path) -> Path:
    folder = root / "workflows"
    folder.mkdir()
    files = {"greet.yaml": GREET, "fails.yaml": FAILS, "gated.yaml": GATED, "slow.yaml": SLOW}
    files |= {"sub/greet-too.yml": CLASH, "bad.yaml": BAD, "notes.txt": "not a workflow"}
    for name, text in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    return folder


def clean_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    return {**env, "XDG_CACHE_HOME": str(root / "cache"), "STEPWEAVE_FILE_ROOT": str(root)}


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


# -- stdio, with --allow-ask ----------------------------------------------------------------


async def test_stdio_serves_workflows_and_ask(tmp_path: Path) -> None:
    folder = workflows(tmp_path)
    journal = tmp_path / "journal.sqlite3"
    stderr_path = tmp_path / "server.stderr"
    target = tmp_path / "created.txt"
    async with OpenAITestServer(responder=lambda _: ScriptedReply.finish("nothing more")) as model:
        model.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]),
            ScriptedReply.finish("waited"),
            ScriptedReply.plan([{"id": "t1", "tool": "shell", "args": {"argv": ["touch", str(target)]}}]),
        )
        command, *args = stepweave_command()
        params = StdioServerParameters(
            command=command,
            args=[*args, "mcp", "serve", "--workflows", str(folder), "--allow-ask", "--tools", "tools.builtin",
                  "--journal", str(journal)],
            env={**clean_env(tmp_path), "OPENAI_BASE_URL": model.base_url, "STEPWEAVE_MODEL": model.model},
            cwd=str(tmp_path),
        )  # fmt: skip
        with stderr_path.open("w") as errlog, anyio.fail_after(45):
            async with Client(stdio_client(params, errlog=errlog)) as client:
                await check_the_listing(client)
                await check_a_call(client, journal)
                await check_a_failure(client, folder)
                await check_a_refused_gate(client, target)
                await check_ask(client, target)
    stderr = stderr_path.read_text()
    # The bad file is reported with its line and skipped; the clash is said; the rest is served.
    assert f"{folder / 'bad.yaml'}: skipped, not a valid workflow" in stderr
    assert f"{folder / 'bad.yaml'}:3:" in stderr and "unknown tool 'no_such_tool'" in stderr
    assert f"{folder / 'sub' / 'greet-too.yml'}: tool name 'greet_people' is taken" in stderr
    assert "served as 'greet_people_2'" in stderr


async def check_the_listing(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert sorted(tools) == ["ask", "fails", "gated", "greet_people", "greet_people_2", "slow"]
    greet = tools["greet_people"]
    assert greet.title == "greet people" and greet.description == "Greet someone, then say it again."
    assert greet.input_schema == {
        "type": "object",
        "properties": {
            "who": {"type": "string", "description": "Whom to greet"},
            "times": {"type": "integer", "default": 2},
            "loud": {"type": "boolean", "default": None},
        },
        "required": ["who"],
        "additionalProperties": False,
    }
    assert greet.output_schema == {
        "type": "object",
        "properties": {"greeting": {}, "times": {}},
        "required": ["greeting", "times"],
    }
    assert tools["fails"].output_schema is None  # no outputs declared
    assert tools["greet_people_2"].description == "The other one."
    assert tools["ask"].input_schema["required"] == ["request"]


async def check_a_call(client: Client, journal: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool("greet_people", {"who": "ann", "times": 3}, progress_callback=on_progress)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"greeting": "hello ann", "times": 3}
    shown = json.loads(text_of(result))
    assert shown["outputs"] == {"greeting": "hello ann", "times": 3} and shown["status"] == "succeeded"
    # One notification per finished step, in order.
    assert seen == [(1, 2, "step hello succeeded"), (2, 2, "step again succeeded")]
    # Journaled like `stepweave run`: resumable by id, with the workflow's path and inputs.
    record = Journal(journal).load(shown["run_id"]).record
    assert record.status == "succeeded"
    assert record.meta["inputs"] == {"who": "ann", "times": 3, "loud": None}
    assert record.meta["workflow"].endswith("greet.yaml") and record.meta["via"] == "mcp"

    wrong = await client.call_tool("greet_people", {"who": 7})
    assert wrong.is_error and "input 'who' must be a string" in text_of(wrong)


async def check_a_failure(client: Client, folder: Path) -> None:
    result = await client.call_tool("fails", {})
    assert result.is_error
    message = text_of(result)
    assert message.startswith(f"{folder / 'fails.yaml'}:6: step 'boom' failed: ")
    assert "exit" in message and "3" in message


async def check_a_refused_gate(client: Client, target: Path) -> None:
    result = await client.call_tool("gated", {"path": str(target)})
    assert result.is_error
    message = text_of(result)
    assert "step 'create' failed: ApprovalDenied" in message
    assert "needs approval and there is no terminal to ask: pass --allow write_file" in message
    assert not await anyio.Path(target).exists()


async def check_ask(client: Client, target: Path) -> None:
    answered = await client.call_tool("ask", {"request": "Wait a moment"})
    assert not answered.is_error, text_of(answered)
    assert answered.structured_content == {
        "answer": "waited",
        "status": "succeeded",
        "steps": {"t1": "succeeded"},
    }
    # A model's plan that changes something is refused: the server was not started with --yes.
    refused = await client.call_tool("ask", {"request": "Create the file"})
    assert refused.is_error
    message = text_of(refused)
    assert "1 step(s) were not approved" in message
    assert "step 't1' (shell) needs approval and there is no terminal to ask: pass --allow shell" in message
    assert not await anyio.Path(target).exists()


# -- streamable HTTP, without --allow-ask -------------------------------------------------


class ServerLog:
    """The server's stderr, read as it comes; tests wait for a line, never for a time."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._stream = stream
        self._changed = asyncio.Condition()

    async def pump(self) -> None:
        while line := await self._stream.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()

    async def wait_for(self, pattern: str) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := re.search(pattern, line))]
            return bool(found)

        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(seen)
        return found[0]


@contextlib.asynccontextmanager
async def http_server(folder: Path, journal: Path) -> AsyncIterator[tuple[str, ServerLog]]:
    process = await asyncio.create_subprocess_exec(
        *stepweave_command(), "mcp", "serve", "--workflows", str(folder), "--transport", "http",
        "--port", "0", "--journal", str(journal),
        cwd=folder.parent, env=clean_env(folder.parent),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    log = ServerLog(process.stderr)
    pump = asyncio.create_task(log.pump())
    try:
        # Printed once the socket listens: the address is ready to connect to.
        url = (await log.wait_for(r"listening on (http://127\.0\.0\.1:\d+/mcp)")).group(1)
        yield url, log
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        await pump


async def test_streamable_http_serves_workflows_and_cancels_a_run(tmp_path: Path) -> None:
    folder = workflows(tmp_path)
    journal = tmp_path / "journal.sqlite3"
    async with http_server(folder, journal) as (url, log), Client(url) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "greet_people" in names and "ask" not in names  # no --allow-ask, no ask
        result = await client.call_tool("greet_people", {"who": "bo"})
        assert result.structured_content == {"greeting": "hello bo", "times": 2}

        # The client cancels the call once the first step has finished: the run is cancelled.
        first_step = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first_step.set()

        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool("slow", {}, progress_callback=on_progress)

            group.start_soon(call)
            with anyio.fail_after(30):
                await first_step.wait()
            group.cancel_scope.cancel()
        run_id = (await log.wait_for(r"slow: run (\w+) cancelled by the client")).group(1)
        assert Journal(journal).load(run_id).record.status == "cancelled"
        assert (await client.call_tool("greet_people", {"who": "cy"})).structured_content is not None


# -- the example of docs/mcp-server.md ------------------------------------------------------


def doc_blocks() -> dict[str, str]:
    text = (ROOT / "docs" / "mcp-server.md").read_text()
    blocks: dict[str, str] = {}
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S):
        blocks.setdefault(lang, body)  # the first block of each language is the example's
    return blocks


def test_the_documented_example_runs_as_shown(tmp_path: Path) -> None:
    blocks = doc_blocks()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "word-count.yaml").write_text(blocks["yaml"])
    (tmp_path / "client.py").write_text(blocks["python"])
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "client.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == blocks["text"]
    assert "serving tools: word-count" in proc.stderr
