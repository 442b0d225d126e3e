"""``BUILTIN_TOOLS`` and ``builtin_registry``."""

from __future__ import annotations

import tools.builtin as builtin
from tools import Tool, ToolRegistry
from tools.builtin import BUILTIN_TOOLS, builtin_registry

NAMES = ["shell", "http", "sql", "read_file", "write_file", "python", "wait", "approve"]


def test_all_builtins_are_tools_with_the_expected_names() -> None:
    assert [t.name for t in BUILTIN_TOOLS] == NAMES
    assert all(isinstance(t, Tool) for t in BUILTIN_TOOLS)


def test_registry_is_fresh_each_time() -> None:
    first, second = builtin_registry(), builtin_registry()
    assert isinstance(first, ToolRegistry)
    assert first is not second
    assert first.names == NAMES

    @Tool.from_function
    def extra() -> int:
        """An extra tool."""
        return 1

    first.register(extra)
    assert "extra" in first and "extra" not in second


def test_every_builtin_is_described() -> None:
    for item in BUILTIN_TOOLS:
        assert item.description, item.name
        schema = item.openai_schema()["function"]["parameters"]
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{item.name}.{name} has no description"
        assert item.return_schema is not None, item.name


def test_public_names_exist() -> None:
    for name in builtin.__all__:
        assert hasattr(builtin, name), name
