"""The dependency direction between the packages holds.

``tools`` depends on nothing of ours; ``orchestrator`` depends on ``tools``; ``planners``
depend on both. The CLI (``orchestrator/cli/``) is the one composition root allowed to
import all three. Checked twice: statically over every source file (any ``import``,
including one inside a function, and ``importlib.import_module("...")`` with a literal
name), and at run time in a fresh interpreter that imports every module of a package and
resolves every lazily exported name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: package -> (packages it must never import, its directories exempt from the rule)
RULES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "orchestrator": (frozenset({"planners"}), ("cli",)),
    "tools": (frozenset({"orchestrator", "planners"}), ()),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(package: str) -> Iterator[Path]:
    _, exempt = RULES[package]
    for path in sorted((ROOT / package).rglob("*.py")):
        if path.relative_to(ROOT / package).parts[0] not in exempt:
            yield path


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    yield from imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """Imports in ``source``, a module of ``package`` (relative imports resolve against it)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the file's package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module] if node.module else base)
            else:
                yield node.lineno, node.module or ""
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            yield node.lineno, node.args[0].value


def violations(package: str) -> list[str]:
    forbidden, _ = RULES[package]
    found = []
    for path in source_files(package):
        for line, name in imported_modules(path):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)}:{line}: imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_source_file_imports_against_the_dependency_direction(package: str) -> None:
    assert list(source_files(package)), f"no sources found for {package}"
    assert violations(package) == []


def test_the_static_check_sees_imports_in_every_form() -> None:
    # The positive control: the CLI (exempt) does import planners, and the parser finds it.
    cli = [
        name for path in (ROOT / "orchestrator" / "cli").rglob("*.py") for _, name in imported_modules(path)
    ]
    assert any(name.split(".")[0] == "planners" for name in cli)
    sample = (
        "import planners.llm\n"
        "from planners import tsg\n"
        "from ..graph import Task\n"
        "def later():\n"
        "    from planners.workflow import load_workflow\n"
        "    importlib.import_module('planners.tsg')\n"
    )
    found = sorted(imports_in(sample, "orchestrator.devices"))
    assert found == [
        (1, "planners.llm"),
        (2, "planners"),
        (3, "orchestrator.graph"),
        (5, "planners.workflow"),
        (6, "planners.tsg"),
    ]


_LOAD_EVERYTHING = """
import importlib, json, sys
from pathlib import Path

package, exempt = sys.argv[1], set(sys.argv[2:])
top = importlib.import_module(package)
for name in getattr(top, "__all__", ()):
    getattr(top, name)  # lazily exported names import their modules now
root = Path(top.__file__).parent
for path in sorted(root.rglob("*.py")):
    relative = path.relative_to(root)
    if relative.parts[0] in exempt:
        continue
    parts = (package, *relative.with_suffix("").parts)
    importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("package", sorted(RULES))
def test_importing_every_module_of_a_package_loads_nothing_it_must_not(package: str, tmp_path: Path) -> None:
    forbidden, exempt = RULES[package]
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_EVERYTHING, package, *exempt],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout)
    assert package in loaded and f"{package}.errors" in loaded  # it did load the package
    assert [name for name in loaded if name.split(".")[0] in forbidden] == []
