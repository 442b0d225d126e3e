"""``ToolRegistry``: tools by name, some of them imported only when first needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools import ToolRegistry, tool
from tools.builtin import BUILTIN_TOOLS, builtin_registry
from tools.errors import ToolDefinitionError, ToolNotFoundError


@tool
def double(x: int) -> int:
    return 2 * x


def test_a_deferred_tool_is_loaded_once_on_first_use() -> None:
    loads: list[str] = []

    def load() -> object:
        loads.append("double")
        return double

    registry = ToolRegistry()
    registry.register_deferred("double", load)  # type: ignore[arg-type]
    assert "double" in registry and registry.names == ["double"] and len(registry) == 1
    assert loads == []  # known by name, not imported
    assert registry.get("double") is double and registry.get("double") is double
    assert loads == ["double"]


def test_deferred_names_take_part_in_suggestions_and_clashes() -> None:
    registry = builtin_registry()
    with pytest.raises(ToolNotFoundError, match="did you mean 'shell'"):
        registry.get("shel")
    with pytest.raises(ToolDefinitionError, match="already registered"):
        registry.register_deferred("wait", lambda: double)

    @tool(name="wait")
    def my_wait() -> None: ...

    with pytest.raises(ToolDefinitionError, match="a different tool named 'wait'"):
        registry.register(my_wait)
    assert registry.register(my_wait, replace=True) is my_wait


def test_a_loader_that_makes_another_tool_is_refused() -> None:
    registry = ToolRegistry()
    registry.register_deferred("triple", lambda: double)
    with pytest.raises(ToolDefinitionError, match="deferred as 'triple' loaded as 'double'"):
        registry.get("triple")


def test_the_builtin_registry_iterates_every_tool_in_order() -> None:
    assert [t.name for t in builtin_registry()] == [t.name for t in BUILTIN_TOOLS]
    assert [s["function"]["name"] for s in builtin_registry().openai_schemas()] == builtin_registry().names


def test_using_one_builtin_imports_only_its_module() -> None:
    """What makes `validate` of a shell-only workflow fast: the other built-ins (http with
    its client and guard, sql, python, ...) are not imported."""
    code = (
        "import sys\n"
        "from tools.builtin import builtin_registry\n"
        "registry = builtin_registry()\n"
        "registry.get('wait').validate_arguments({'seconds': 0})\n"
        "print(sorted(m for m in sys.modules if m.startswith('tools.builtin._')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["['tools.builtin._wait']"], done.stdout + done.stderr


def test_a_module_that_exports_its_tools_lazily_registers_them_all() -> None:
    """`--tools tools.builtin` offers every built-in, though the package imports them lazily."""
    registry = ToolRegistry()
    found = registry.register_module("tools.builtin")
    assert sorted(t.name for t in found) == sorted(t.name for t in BUILTIN_TOOLS)
