"""Users' type checkers see stepweave's types: each package ships ``py.typed``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

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
number: int = Task(id="b", tool="double").id
"""


def test_every_package_ships_a_py_typed_marker() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]


def test_mypy_strict_on_user_code_sees_stepweave_types(tmp_path: Path) -> None:
    # An environment where stepweave is installed as a plain path (as a wheel or a
    # `.pth` editable install puts it): mypy treats it as an installed package, which it
    # reads only with a py.typed marker. Its dependencies are left out (mypy then reads
    # them as Any): stepweave's own annotations are what is checked, in 2 s, not 12.
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
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-executable",
            str(python),
            "--cache-dir",
            str(tmp_path / "cache"),
            str(user),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # One error, the deliberate one: had mypy seen stepweave as untyped, `Task.id` would
    # be Any (no error there) and the imports would be reported instead.
    assert "import-untyped" not in proc.stdout and "import-not-found" not in proc.stdout, proc.stdout
    assert proc.stdout.count("error:") == 1, proc.stdout
    assert 'user.py:13: error: Incompatible types in assignment (expression has type "str"' in proc.stdout
