"""@tool: schemas from signatures, validation, context injection, registry."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from tools import (
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolDefinitionError,
    ToolNotFoundError,
    ToolRegistry,
    ToolResultError,
    tool,
)


class Point(BaseModel):
    x: int
    y: int


@tool
async def fetch(url: str, retries_hint: int = 3) -> dict[str, Any]:
    """Fetch a URL.

    Longer explanation that is not part of the summary.

    Args:
        url: Address to fetch.
        retries_hint: How hard to try,
            continued on a second line.
    """
    return {"url": url, "n": retries_hint}


@tool(name="move", timeout=2.5, retries=4, idempotent=True, needs_approval=True)
def move_point(ctx: ToolContext, point: Point, dx: Annotated[int, Field(gt=0)]) -> Point:
    """Move a point right.

    :param point: the point
    :param dx: how far
    """
    ctx.progress(0.5, "halfway")
    return Point(x=point.x + dx, y=point.y)


def test_bare_decorator_derives_schema_and_descriptions() -> None:
    schema = fetch.openai_schema()
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "fetch"
    assert fn["description"] == "Fetch a URL."
    params = fn["parameters"]
    assert params["required"] == ["url"]
    assert params["additionalProperties"] is False
    assert params["properties"]["url"] == {"type": "string", "description": "Address to fetch."}
    assert params["properties"]["retries_hint"]["default"] == 3
    assert "second line" in params["properties"]["retries_hint"]["description"]
    assert fetch.is_async and not fetch.takes_context


def test_options_become_policy_and_context_is_not_in_schema() -> None:
    assert isinstance(move_point, Tool)
    assert (move_point.name, move_point.timeout, move_point.retries) == ("move", 2.5, 4)
    assert move_point.idempotent is True and move_point.needs_approval is True
    assert move_point.takes_context and not move_point.is_async
    props = move_point.parameters_schema["properties"]
    assert set(props) == {"point", "dx"}
    assert props["dx"]["exclusiveMinimum"] == 0
    assert props["dx"]["description"] == "how far"


def test_plain_call_still_works() -> None:
    assert asyncio.run(fetch("u")) == {"url": "u", "n": 3}


async def test_invoke_validates_and_coerces_arguments() -> None:
    assert await fetch.invoke({"url": "x", "retries_hint": "7"}) == {"url": "x", "n": 7}
    with pytest.raises(ToolArgumentError) as info:
        await fetch.invoke({"url": "x", "retries_hint": "many"})
    assert "retries_hint" in str(info.value) and "'fetch'" in str(info.value)
    with pytest.raises(ToolArgumentError, match="bogus"):
        await fetch.invoke({"url": "x", "bogus": 1})
    with pytest.raises(ToolArgumentError, match="url"):
        await fetch.invoke({})
    assert ToolArgumentError("x").retryable is False


async def test_sync_tool_runs_in_a_thread_with_injected_context() -> None:
    seen: list[tuple[float | None, str]] = []
    loop_thread = threading.get_ident()
    threads: list[int] = []

    @tool
    def where(ctx: ToolContext) -> int:
        threads.append(threading.get_ident())
        ctx.progress(1.0, ctx.task_id)
        return ctx.attempt

    ctx = ToolContext(run_id="r", task_id="t1", attempt=2, report=lambda f, m: seen.append((f, m)))
    assert await where.invoke({}, ctx) == 2
    assert threads and threads[0] != loop_thread
    assert seen == [(1.0, "t1")]
    assert await move_point.invoke({"point": {"x": 1, "y": 2}, "dx": 3}, ctx) == Point(x=4, y=2)
    with pytest.raises(ToolArgumentError, match="dx"):
        await move_point.invoke({"point": {"x": 1, "y": 2}, "dx": 0}, ctx)


async def test_return_value_is_validated_against_declared_type() -> None:
    @tool
    async def liar() -> int:
        return "not a number"  # type: ignore[return-value]

    with pytest.raises(ToolResultError, match="liar"):
        await liar.invoke({})

    @tool
    async def untyped():  # type: ignore[no-untyped-def]
        return object

    assert await untyped.invoke({}) is object


def test_progress_fraction_is_checked() -> None:
    with pytest.raises(ValueError, match="within"):
        ToolContext().progress(1.5)


def test_check_arguments_skips_dynamic_values() -> None:
    assert fetch.check_arguments({"url": "${{ steps.a.output }}"}, dynamic={"url"}) == []
    problems = fetch.check_arguments({"ur": 1, "retries_hint": "x"})
    assert any("unknown argument 'ur' (did you mean 'url'?)" in p for p in problems)
    assert any("missing required argument 'url'" in p for p in problems)
    assert any("retries_hint" in p for p in problems)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x): return x", "no type hint"),
        ("def f(*args: int) -> int: return 0", "args"),
        ("def f(x: int, /) -> int: return x", "positional-only"),
        ("def f(x: int, ctx: ToolContext) -> int: return x", "must come first"),
        ("def f():\n    yield 1", "generator"),
    ],
)
def test_bad_definitions_are_rejected(source: str, message: str) -> None:
    namespace: dict[str, Any] = {"ToolContext": ToolContext}
    exec(source, namespace)  # test-only: builds functions with signatures we cannot write inline
    with pytest.raises(ToolDefinitionError, match=message):
        tool(namespace["f"])


def test_bad_policy_is_rejected() -> None:
    with pytest.raises(ToolDefinitionError, match="timeout"):
        tool(name="t", timeout=0)(lambda: None)
    with pytest.raises(ToolDefinitionError, match="retries"):
        tool(name="t", retries=-1)(lambda: None)


def test_registry_lookup_duplicates_and_schemas() -> None:
    def plain(a: int) -> int:
        return a

    registry = ToolRegistry([fetch, move_point, plain])
    assert registry.names == ["fetch", "move", "plain"]
    assert "plain" in registry and len(registry) == 3
    assert [s["function"]["name"] for s in registry.openai_schemas()] == ["fetch", "move", "plain"]
    with pytest.raises(ToolNotFoundError, match="did you mean 'fetch'"):
        registry.get("fetsh")
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.register(tool(name="fetch")(plain))
    registry.register(fetch)  # the same object again is fine
    assert ToolRegistry.coerce(registry) is registry


def test_read_only_is_declared_not_assumed() -> None:
    from tools.builtin import http, read_file, shell, sql, wait, write_file

    # Unknown means "has side effects": only what a tool's author declared is read-only.
    assert not tool(lambda: None, name="plain").is_read_only({})
    assert wait.is_read_only({}) and read_file.is_read_only({"path": "x"})
    assert not shell.is_read_only({"argv": ["ls"]}) and not write_file.is_read_only({})
    assert http.is_read_only({"url": "http://x"}) and http.is_read_only({"method": "head"})
    assert not http.is_read_only({"method": "POST"})
    assert sql.is_read_only({"query": "select 1"}) and not sql.is_read_only({"write": True})
    # A predicate that cannot judge the arguments counts as "not read-only".
    assert not tool(lambda: None, name="odd", read_only=lambda a: a["missing"]).is_read_only({})
