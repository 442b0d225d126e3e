"""Users' type checkers see stepweave's types: each package ships ``py.typed``, and
``@tool`` keeps the decorated function's signature.

One mypy run (strict) checks every user file below; each test reads its own file's
part of the report. A line that must be reported ends with ``# E: <error code>``; every
other line must pass. ``assert_type`` is exact (``Any`` is not ``int``), so a decorator
that erased the signature would fail the good files as well as miss the bad calls.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("orchestrator", "planners", "tools")

USER_CODE = """\
from orchestrator import Task, TaskGraph
from planners import load_workflow
from tools import tool


@tool
def double(x: int) -> int:
    return 2 * x


graph = TaskGraph([Task(id="a", tool="double", args={"x": 1})])
workflow = load_workflow
number: int = Task(id="b", tool="double").id  # E: assignment
"""

#: Every decorator form keeps the signature; the tools are still what registries take.
TOOLS_GOOD = """\
from collections.abc import Coroutine
from typing import Any, assert_type

from orchestrator import Orchestrator
from tools import Tool, ToolContext, ToolRegistry, tool


@tool
def double(x: int) -> int:
    return 2 * x


@tool(retries=2, read_only=True)
def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


@tool
async def fetch(url: str) -> bytes:
    return url.encode()


@tool(timeout=5)
async def greet(ctx: ToolContext, name: str) -> str:
    return f"{ctx.task_id}: hello {name}"


@tool
def where(ctx: ToolContext) -> str:
    return ctx.run_id


def halve(x: int) -> float:
    return x / 2


async def main() -> None:
    assert_type(double(x=1), int)
    assert_type(double(1), int)
    assert_type(scale(x=1.0), float)
    assert_type(scale(1.0, factor=3.0), float)
    pending = assert_type(fetch(url="u"), Coroutine[Any, Any, bytes])
    assert_type(await pending, bytes)
    assert_type(await greet(ToolContext(), name="a"), str)
    assert_type(where(ToolContext()), str)
    assert_type(double.name, str)
    assert_type(Tool.from_function(halve, name="half")(x=2), float)


every: list[Tool] = [double, scale, fetch, greet, where]
one: Tool = double
Orchestrator([double, scale, fetch, greet, where])
ToolRegistry([double, fetch])
"""

TOOLS_BAD = """\
from tools import ToolContext, tool


@tool
def double(x: int) -> int:
    return 2 * x


@tool(retries=2)
async def greet(ctx: ToolContext, name: str) -> str:
    return f"hello {name}"


async def main() -> None:
    double(x="a")  # E: arg-type
    double(y=1)  # E: call-arg
    text: str = double(x=1)  # E: assignment
    await greet(name="a")  # E: call-arg
    await greet(ToolContext(), name=1)  # E: arg-type
    count: int = await greet(ToolContext(), name="a")  # E: assignment
    tool(retries="2")  # E: call-overload
"""

FILES = {"user.py": USER_CODE, "tools_good.py": TOOLS_GOOD, "tools_bad.py": TOOLS_BAD}

_ERROR = re.compile(r"^(?P<file>[\w.]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$")


def expected_errors(source: str) -> set[tuple[int, str]]:
    """``(line, code)`` of every line marked ``# E: code``."""
    marks = (re.search(r"# E: ([\w-]+)$", text) for text in source.splitlines())
    return {(number, mark.group(1)) for number, mark in enumerate(marks, 1) if mark}


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # An environment where stepweave is installed as a plain path (as a wheel or a
    # `.pth` editable install puts it): mypy treats it as an installed package, which it
    # reads only with a py.typed marker. Its dependencies are left out (mypy then reads
    # them as Any): stepweave's own annotations are what is checked, in 2 s, not 12.
    tmp_path = tmp_path_factory.mktemp("typing")
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    Path(purelib, "stepweave.pth").write_text(f"{ROOT}\n")
    for name, source in FILES.items():
        (tmp_path / name).write_text(source)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-pretty",
            "--show-error-codes",
            "--python-executable",
            str(python),
            "--cache-dir",
            str(tmp_path / "cache"),
            *FILES,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Had mypy seen stepweave as untyped, every stepweave type would be Any and the
    # imports would be reported instead.
    assert "import-untyped" not in proc.stdout and "import-not-found" not in proc.stdout, proc.stdout
    yield proc.stdout


def reported_errors(report: str, file: str) -> set[tuple[int, str]]:
    found = (_ERROR.match(line) for line in report.splitlines())
    return {(int(m["line"]), m["code"]) for m in found if m and m["file"] == file}


def test_every_package_ships_a_py_typed_marker() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]


@pytest.mark.parametrize("file", list(FILES))
def test_mypy_strict_on_user_code_reports_exactly_the_marked_lines(mypy_report: str, file: str) -> None:
    expected = expected_errors(FILES[file])
    assert reported_errors(mypy_report, file) == expected, mypy_report
    # No error line escaped the pattern (one without a code, say).
    errors = [line for line in mypy_report.splitlines() if line.startswith(f"{file}:") and ": error:" in line]
    assert len(errors) == len(expected), mypy_report


def test_the_bad_file_is_not_trivially_empty() -> None:
    # The markers are what the assertions compare against: losing them would make the
    # bad file's test pass on anything.
    assert len(expected_errors(TOOLS_BAD)) == 7
    assert expected_errors(TOOLS_GOOD) == set()
