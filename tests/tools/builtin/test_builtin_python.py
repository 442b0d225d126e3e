"""The ``python`` tool: only registered callables can be called."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date

import pytest

from tools import ToolError
from tools.builtin import (
    PythonResult,
    python,
    register_callable,
    registered_callables,
    unregister_callable,
)


def add(a: int, b: int = 1) -> dict[str, object]:
    return {"sum": a + b, "when": date(2024, 1, 2), "pair": (a, b)}


async def slow_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def returns_object() -> object:
    return object()


@pytest.fixture
def registered() -> Iterator[str]:
    names = [
        "test:add",
        "test:double",
        "test:object",
    ]
    register_callable(add, name="test:add")
    register_callable(name="test:double")(slow_double)
    register_callable(returns_object, name="test:object")
    yield "test:add"
    for name in names:
        unregister_callable(name)


async def test_registered_target_is_called(registered: str) -> None:
    result = await python.invoke({"target": registered, "kwargs": {"a": 2, "b": 5}})
    assert isinstance(result, PythonResult)
    assert result.target == "test:add"
    # The return value is converted to JSON-compatible data.
    assert result.value == {"sum": 7, "when": "2024-01-02", "pair": [2, 5]}


async def test_async_target(registered: str) -> None:
    result = await python.invoke({"target": "test:double", "kwargs": {"x": 21}})
    assert result.value == 42


async def test_unregistered_target_lists_the_registered_ones(registered: str) -> None:
    with pytest.raises(
        ToolError, match=r"'os:system' is not registered; registered: test:add, test:double"
    ) as info:
        await python.invoke({"target": "os:system", "kwargs": {"command": "true"}})
    assert info.value.retryable is False


async def test_close_name_is_suggested(registered: str) -> None:
    with pytest.raises(ToolError, match=r"did you mean 'test:add'\?"):
        await python.invoke({"target": "test:ad"})


async def test_bad_kwargs_are_reported(registered: str) -> None:
    with pytest.raises(
        ToolError, match=r"bad kwargs for python target 'test:add': .*'a'; it takes: a, b=1$"
    ) as info:
        await python.invoke({"target": registered, "kwargs": {"c": 1}})
    assert info.value.retryable is False


async def test_non_json_result_is_reported(registered: str) -> None:
    with pytest.raises(ToolError, match="cannot be converted to JSON"):
        await python.invoke({"target": "test:object"})


async def test_register_by_import_path() -> None:
    func = register_callable("json:dumps")
    try:
        assert "json:dumps" in registered_callables()
        result = await python.invoke({"target": "json:dumps", "kwargs": {"obj": [1, 2]}})
        assert result.value == "[1, 2]"
        assert callable(func)
    finally:
        unregister_callable("json:dumps")


def test_default_name_is_module_and_qualname() -> None:
    register_callable(add)
    try:
        assert f"{__name__}:add" in registered_callables()
    finally:
        unregister_callable(f"{__name__}:add")


def test_registration_errors() -> None:
    with pytest.raises(ValueError, match="not of the form"):
        register_callable("json.dumps")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        register_callable("json:nope")
    register_callable(add, name="test:taken")
    try:
        register_callable(add, name="test:taken")  # the same function again is fine
        with pytest.raises(ValueError, match="already registered as 'test:taken'"):
            register_callable(slow_double, name="test:taken")
    finally:
        unregister_callable("test:taken")
    with pytest.raises(KeyError, match="test:taken"):
        unregister_callable("test:taken")
