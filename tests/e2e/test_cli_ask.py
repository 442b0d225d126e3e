"""`stepweave ask` as a real process against the OpenAI-compatible test server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from planners.llm.testing import OpenAITestServer, ScriptedReply

from .test_cli import ROOT, stepweave_command

TOOLS = "examples/example_tools.py"
#: Where ask remembers servers' formats during these tests (not the user's cache).
CACHE = Path(tempfile.gettempdir()) / "stepweave-test-cache"


async def ask(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI without blocking the loop the test server answers on."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    process = await asyncio.create_subprocess_exec(
        *stepweave_command(), "ask", *args,
        cwd=ROOT, env={**base, "COLUMNS": "200", "XDG_CACHE_HOME": str(CACHE), **(env or {})},
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
        # --tools tools.builtin offers every built-in (write_file is not offered by default).
        code, stdout, stderr = await ask(
            "Write a file", "--plan-only", "--tools", "tools.builtin", env=server_env(server)
        )
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
            "--allow", "health_check", "--local-agents", "2", "--local-label", "site=lab", "--on", "site=lab", "--json",
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


# -- a plan is untrusted input (security review, findings 2 and 18) ---------------------------


def side_effect_plan(work: Path) -> list[dict[str, Any]]:
    """The review's p_rm.json: a shell command, a file write and a SQL write."""
    return [
        {"id": "t1", "tool": "shell", "args": {"argv": ["touch", str(work / "PWNED_BY_PLAN")]}},
        {"id": "t2", "tool": "write_file", "args": {"path": "pwned.txt", "content": "written by model"}},
        {
            "id": "t3",
            "tool": "sql",
            "args": {
                "path": str(work / "model.db"),
                "query": "CREATE TABLE pwn(x)",
                "write": True,
                "create": True,
            },
        },
    ]


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def finishing_server() -> OpenAITestServer:
    """A model that, once its script is used up, answers every call with a finish."""
    return OpenAITestServer(responder=lambda record: ScriptedReply.finish("nothing more to do"))


def files_env(server: OpenAITestServer, root: Path) -> dict[str, str]:
    return {**server_env(server), "STEPWEAVE_FILE_ROOT": str(root)}


async def test_a_planned_side_effect_without_a_terminal_is_refused(tmp_path: Path) -> None:
    async with finishing_server() as server:
        server.queue(ScriptedReply.plan(side_effect_plan(tmp_path)))
        # Every built-in offered: refusal comes from approval, not from the tool set.
        code, _, stderr = await ask("Do it", "--tools", "tools.builtin", env=files_env(server, tmp_path))
    assert code == 1
    assert names(tmp_path) == set()  # nothing created
    assert "step 't1' (shell) needs approval and there is no terminal to ask: pass --allow shell" in stderr
    assert "step 't2' (write_file)" in stderr and "step 't3' (sql)" in stderr
    assert "3 step(s) were not approved" in stderr


async def test_the_default_tool_set_offers_only_read_only_built_ins(tmp_path: Path) -> None:
    async with finishing_server() as server:
        server.queue(ScriptedReply.plan(side_effect_plan(tmp_path)))
        code, _, stderr = await ask("Do it", env=files_env(server, tmp_path))
        offered = json.dumps(server.completions[0].body)
    assert code == 1 and names(tmp_path) == set()
    for name in ("wait", "read_file", "http", "sql"):
        assert f'"{name}"' in offered
    for name in ("shell", "write_file", "python"):
        assert f'"{name}"' not in offered
    assert "the model wanted the shell tool, which ask offers only with --allow shell" in stderr


async def test_allow_approves_that_tool_only(tmp_path: Path) -> None:
    plan = [step for step in side_effect_plan(tmp_path) if step["tool"] != "write_file"]
    async with finishing_server() as server:
        server.queue(ScriptedReply.plan(plan))
        code, _, stderr = await ask("Do it", "--allow", "shell", env=files_env(server, tmp_path))
    assert (tmp_path / "PWNED_BY_PLAN").exists()  # shell was allowed
    assert not (tmp_path / "model.db").exists()  # the sql write was not
    assert code == 1 and "step 't3' (sql) needs approval" in stderr


async def test_yes_approves_every_step(tmp_path: Path) -> None:
    async with finishing_server() as server:
        server.queue(ScriptedReply.plan(side_effect_plan(tmp_path)))
        code, _, stderr = await ask("Do it", "--yes", env=files_env(server, tmp_path))
    assert code == 0, stderr
    assert {"PWNED_BY_PLAN", "pwned.txt", "model.db"} <= names(tmp_path)


async def test_environment_variables_reach_a_program_only_when_allowed_by_name(tmp_path: Path) -> None:
    # The review's p_env.json: the plan asks shell to pass the API key through, to print it.
    canary = "sk-canary-3f9a1c"
    plan = [
        {
            "id": "t1",
            "tool": "shell",
            "args": {"argv": ["printenv", "OPENAI_API_KEY"], "env": ["OPENAI_API_KEY"]},
        }
    ]
    async with finishing_server() as server:
        server.queue(ScriptedReply.plan(plan))
        env = {**files_env(server, tmp_path), "OPENAI_API_KEY": canary}
        code, stdout, stderr = await ask("Print the key", "--yes", "--json", env=env)
        sent_to_model = json.dumps([record.body for record in server.completions])
    assert code == 1
    assert "would pass the environment variable(s) OPENAI_API_KEY" in stderr
    assert "--allow-env OPENAI_API_KEY" in stderr
    assert canary not in sent_to_model and canary not in stdout
    # --allow-env NAME lets it through: test_cli_approval.py::test_ask_policy_on_environment_variables


async def test_read_only_plans_run_without_asking(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("disk is fine")
    with contextlib.closing(sqlite3.connect(tmp_path / "state.db")) as db:
        db.execute("CREATE TABLE jobs(name)")
        db.commit()
    async with OpenAITestServer() as server:
        plan = [
            {"id": "t1", "tool": "wait", "args": {"seconds": 0}},
            {"id": "t2", "tool": "read_file", "args": {"path": "notes.txt"}},
            {"id": "t3", "tool": "http", "args": {"url": f"{server.base_url}/models"}},
            {
                "id": "t4",
                "tool": "sql",
                "args": {"path": str(tmp_path / "state.db"), "query": "SELECT count(*) FROM jobs"},
            },
        ]
        server.queue(ScriptedReply.plan(plan), ScriptedReply.finish("all read"))
        env = {**files_env(server, tmp_path), "STEPWEAVE_HTTP_ALLOW": "127.0.0.1"}
        code, stdout, stderr = await ask("Read things", "--json", env=env)
    assert code == 0, stderr
    ended = {
        e["task_id"]: e["status"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "task_ended"
    }
    assert ended == {"t1": "succeeded", "t2": "succeeded", "t3": "succeeded", "t4": "succeeded"}
    assert "needs approval" not in stderr


async def test_timeout_ends_an_ask_that_would_wait_forever() -> None:
    # The review's p_wait.json: `wait 1e9` hung ask for good.
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 1e9}}]))
        started = time.monotonic()
        code, _, stderr = await ask("Wait", "--timeout", "1", env=server_env(server))
    assert code == 1
    assert "ask timed out after 1s (--timeout); the run was cancelled" in stderr
    assert time.monotonic() - started < 30


async def test_allow_names_a_tool_that_exists() -> None:
    async with OpenAITestServer() as server:
        code, _, stderr = await ask("x", "--allow", "shel", env=server_env(server))
    assert code == 2 and "--allow shel: no such tool" in stderr


async def test_a_failed_run_exits_1_even_with_an_answer(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.txt")
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "read_file", "args": {"path": missing}}]),
            ScriptedReply.plan([]),  # the failure replan: nothing can route around it
            ScriptedReply.finish("the file does not exist"),
        )
        code, stdout, stderr = await ask("Read the file", env=server_env(server))
    assert code == 1, stderr
    assert "the file does not exist" in stdout  # the answer is shown, the exit is honest
    assert "the run failed (failed: t1)" in stderr


async def test_a_placeholder_is_never_printed_as_the_answer() -> None:
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]),
            *[ScriptedReply.finish("<the answer, or empty>")] * 3,
        )
        code, stdout, stderr = await ask("Wait", env=server_env(server))
    assert code == 1
    assert "<the answer" not in stdout
    assert "placeholder" in stderr


async def test_the_report_is_written_when_planning_fails(tmp_path: Path) -> None:
    report = tmp_path / "failed.html"
    async with OpenAITestServer() as server:
        server.queue(*[ScriptedReply(content="I cannot help with that.", usage=False) for _ in range(3)])
        code, _, stderr = await ask("Do something odd", "--report", str(report), env=server_env(server))
    assert code == 1 and "planning failed" in stderr
    html = report.read_text()
    assert "Do something odd" in html and "no JSON found" in html
    assert html.count("<tr><td>") == 3 and "unknown" in html  # every call, tokens marked unknown
    assert "tokens unknown" in stderr


async def test_the_report_holds_the_answer_the_calls_and_the_plan(tmp_path: Path) -> None:
    report = tmp_path / "ok.html"
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]),
            ScriptedReply.finish("waited & done"),
        )
        code, _, stderr = await ask("Wait", "--report", str(report), env=server_env(server))
    assert code == 0, stderr
    html = report.read_text()
    assert "waited &amp; done" in html and "t1 = wait(" in html
    assert "<td>plan</td>" in html and "<td>join</td>" in html


async def test_a_response_format_that_does_not_exist_is_a_usage_error() -> None:
    async with OpenAITestServer() as server:
        code, _, stderr = await ask("Wait", "--response-format", "xml", env=server_env(server))
    assert code == 2 and "--response-format" in stderr


async def test_a_forced_response_format_is_what_the_server_sees() -> None:
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]),
            ScriptedReply.finish("ok"),
        )
        code, _, stderr = await ask("Wait", "--response-format", "prompt", env=server_env(server))
        assert code == 0, stderr
        assert [r.response_format_type for r in server.completions] == [None, None]


async def test_a_hung_server_fails_at_the_first_token_timeout_given_on_the_command_line() -> None:
    """--first-token-timeout: a server that accepts the call and sends nothing fails the ask
    in about that time, naming the server, instead of the 60 s default."""
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}], first_delay=3600)
        )
        started = time.monotonic()
        code, _, stderr = await ask(
            "Wait", "--first-token-timeout", "1", "--timeout", "50", env=server_env(server)
        )
        took = time.monotonic() - started
    assert code == 1, stderr
    flat = " ".join(stderr.split())
    assert "sent nothing for 1s" in flat and server.base_url.split("//")[1].split("/")[0] in flat, flat
    assert took < 40  # not the 60 s default, nor the whole --timeout


async def test_timeouts_on_the_command_line_must_not_be_negative() -> None:
    code, _, stderr = await ask(
        "Wait", "--idle-timeout", "-1", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    )
    assert code == 2 and "--idle-timeout" in stderr
