"""Response formats: the strongest one the server takes, found once per server and remembered."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator import Orchestrator, PlannerError
from planners.llm import FormatMode, LLMPlanner, ServerMemory
from planners.llm.testing import OpenAITestServer, ScriptedReply
from tools.builtin import builtin_registry

PLAN = ScriptedReply.plan([{"id": "t1", "tool": "search", "args": {"query": "a"}}])


def formats(server: OpenAITestServer) -> list[tuple[str | None, int]]:
    return [(r.response_format_type, r.status) for r in server.completions]


async def test_json_schema_is_tried_first_and_strict_with_an_enum_per_tool(
    server: OpenAITestServer, planner: LLMPlanner, orchestrator: Orchestrator
) -> None:
    server.queue(PLAN, ScriptedReply.finish("done"))
    await planner.ask("Look it up", orchestrator)
    assert formats(server) == [("json_schema", 200), ("json_schema", 200)]
    spec = server.completions[0].body["response_format"]["json_schema"]
    assert spec["strict"] is True
    variants = spec["schema"]["properties"]["tasks"]["items"]["anyOf"]
    assert sorted(v["properties"]["tool"]["enum"][0] for v in variants) == [
        "add",
        "broken",
        "count_words",
        "search",
    ]


async def test_llama_cpp_style_500_falls_back_to_json_object_and_is_remembered(
    make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    memory = ServerMemory()
    async with (
        OpenAITestServer(reject_json_schema=True) as llama,
        OpenAITestServer() as openai_like,
    ):
        llama.queue(*[PLAN, ScriptedReply.finish("done")] * 3)
        openai_like.queue(PLAN, ScriptedReply.finish("done"))
        first = make_planner(llama, server_memory=memory)
        await first.ask("Look it up", orchestrator)
        assert formats(llama) == [("json_schema", 500), ("json_object", 200), ("json_object", 200)]
        fallback = llama.completions[1].body["response_format"]
        assert fallback["type"] == "json_object" and "tasks" in fallback["schema"]["properties"]

        await first.ask("Again", orchestrator)
        await make_planner(llama, server_memory=memory).ask("A third planner, same server", orchestrator)
        assert formats(llama)[3:] == [("json_object", 200)] * 4, "no second probe of json_schema"
        assert [c.response_format for c in first.usage.calls] == ["json_object"] * 4

        await make_planner(openai_like, server_memory=memory).ask("Another server", orchestrator)
        assert formats(openai_like) == [("json_schema", 200), ("json_schema", 200)]


async def test_a_server_without_response_format_gets_the_prompt_alone(
    make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    async with OpenAITestServer(reject_response_format=True) as plain:
        plain.queue(*[PLAN, ScriptedReply.finish("done")] * 2)
        planner = make_planner(plain)
        result = await planner.ask("Look it up", orchestrator)
        assert result.answer == "done"
        assert formats(plain) == [("json_schema", 400), ("json_object", 400), (None, 200), (None, 200)]
        await planner.ask("Again", orchestrator)
        assert formats(plain)[4:] == [(None, 200), (None, 200)]
        assert "Reply with one JSON object and nothing else" in plain.completions[2].messages[0]["content"]


async def test_a_forced_format_is_used_as_is(
    server: OpenAITestServer, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    server.queue(PLAN, ScriptedReply.finish("done"))
    await make_planner(server, response_format="json_object").ask("Look it up", orchestrator)
    assert formats(server) == [("json_object", 200), ("json_object", 200)]


async def test_a_forced_format_the_server_rejects_fails_at_once_saying_what_to_change(
    make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    async with OpenAITestServer(reject_json_schema=True) as llama:
        with pytest.raises(PlannerError) as caught:
            await make_planner(llama, response_format="json_schema").ask("Look it up", orchestrator)
    message = str(caught.value)
    assert "does not take the forced response format 'json_schema'" in message
    assert "'auto'" in message
    assert formats(llama) == [("json_schema", 500)], "no retry, no fallback: the user chose it"


async def test_a_free_form_argument_makes_the_schema_non_strict(
    server: OpenAITestServer, planner: LLMPlanner
) -> None:
    server.queue(ScriptedReply.plan([{"id": "t1", "tool": "wait", "args": {"seconds": 0}}]))
    graph = await planner.plan("Wait a moment", builtin_registry())
    assert list(graph.tasks) == ["t1"]
    spec = server.completions[0].body["response_format"]["json_schema"]
    assert spec["strict"] is False, "http's headers are a free-form object"


async def test_the_fallback_is_remembered_across_runs_in_a_cache_file(
    tmp_path: Path, make_planner: Callable[..., LLMPlanner], orchestrator: Orchestrator
) -> None:
    path = tmp_path / "cache" / "llm-servers.json"
    async with OpenAITestServer(reject_json_schema=True) as llama:
        llama.queue(PLAN, ScriptedReply.finish("done"), PLAN, ScriptedReply.finish("done"))
        await make_planner(llama, server_memory=ServerMemory(path)).ask("Look it up", orchestrator)
        saved = json.loads(path.read_text())
        assert saved["servers"][llama.base_url.rstrip("/")] == {"format": "json_object"}
        # A new process (a new memory) reads the file: no second probe.
        await make_planner(llama, server_memory=ServerMemory(path)).ask("Again", orchestrator)
        assert formats(llama)[3:] == [("json_object", 200)] * 2


def test_a_broken_cache_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "llm-servers.json"
    path.write_text("{not json")
    memory = ServerMemory(path)
    assert memory.format_for("http://x/v1") is FormatMode.JSON_SCHEMA
    memory.remember_format("http://x/v1", FormatMode.PROMPT)
    assert ServerMemory(path).format_for("http://x/v1") is FormatMode.PROMPT


def test_the_persistent_memory_lives_in_the_user_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ServerMemory.persistent().path == tmp_path / "stepweave" / "llm-servers.json"
