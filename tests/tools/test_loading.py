"""``load_tools``: the ``--tools`` loader shared by the CLI and device agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import ToolRegistry, load_tools

TOOL_SOURCE = '''
from tools import tool

@tool
def {name}(x: int) -> int:
    """Return x."""
    return x
'''


def write(tmp_path: Path, stem: str, name: str) -> str:
    path = tmp_path / f"{stem}.py"
    path.write_text(TOOL_SOURCE.format(name=name))
    return str(path)


def test_loads_every_tool_of_each_module_into_the_given_registry(tmp_path: Path) -> None:
    base = ToolRegistry()
    registry = load_tools([write(tmp_path, "mod_a1", "alpha"), write(tmp_path, "mod_b1", "beta")], into=base)
    assert registry is base and sorted(t.name for t in registry) == ["alpha", "beta"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: str(p / "missing.py"), "no such file"),
        (lambda p: "no_such_module_xyz", "ModuleNotFoundError"),
        (
            lambda p: (p / "empty_mod.py").write_text("X = 1\n") and str(p / "empty_mod.py"),
            "no @tool functions",
        ),
        (lambda p: (p / "broken_mod.py").write_text("def (:\n") and str(p / "broken_mod.py"), "SyntaxError"),
    ],
)
def test_a_bad_module_is_named_with_the_reason(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    spec = setup(tmp_path)
    with pytest.raises(ValueError, match=message) as caught:
        load_tools([spec])
    assert str(caught.value).startswith(f"--tools {spec}:")


def test_two_modules_defining_the_same_tool_name_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already registered"):
        load_tools([write(tmp_path, "mod_c1", "gamma"), write(tmp_path, "mod_d1", "gamma")])


def test_a_module_that_only_registers_python_callables_is_accepted(tmp_path: Path) -> None:
    module = tmp_path / "callables_only_mod.py"
    module.write_text(
        "from tools.builtin import register_callable\n\n"
        "@register_callable(name='loading_test_double')\n"
        "def double(x: int) -> int:\n    return 2 * x\n"
    )
    from tools.builtin import registered_callables, unregister_callable

    try:
        registry = load_tools([str(module)])
        assert list(registry) == [] and "loading_test_double" in registered_callables()
    finally:
        unregister_callable("loading_test_double")


def test_a_user_file_named_tools_py_does_not_shadow_the_tools_package(tmp_path: Path) -> None:
    import sys

    import tools as stepweave_tools

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    registry = load_tools([write(first, "tools", "alpha"), write(second, "tools", "beta")])
    assert sorted(t.name for t in registry) == ["alpha", "beta"]
    # Each file is its own private module; the name `tools` still means stepweave's.
    assert sys.modules["tools"] is stepweave_tools
    modules = {registry.get(name).func.__module__ for name in ("alpha", "beta")}
    assert len(modules) == 2 and all(m.startswith("_stepweave_user_tools_") for m in modules)


def test_a_module_that_fails_to_import_is_not_left_half_registered(tmp_path: Path) -> None:
    import sys

    path = tmp_path / "raises_mod.py"
    path.write_text("raise ImportError('missing dependency')\n")
    with pytest.raises(ValueError, match="missing dependency"):
        load_tools([str(path)])
    assert not [name for name in sys.modules if name.startswith("_stepweave_user_raises_mod_")]
