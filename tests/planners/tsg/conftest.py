"""Shared helpers: the copied public runbooks, and the ``stepweave`` command in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planners.tsg import CompiledGuide, compile_guide, load_guide

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).with_name("data")
EXAMPLES = ROOT / "examples" / "tsg"
RUNBOOKS = sorted(p.name for p in DATA.glob("*.md") if p.name != "README.md")


def stepweave() -> list[str]:
    script = Path(sys.executable).with_name("stepweave")
    found = str(script) if script.exists() else shutil.which("stepweave")
    assert found, "the stepweave console script is not installed (pip install -e .)"
    return [found]


def environment(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_"))}
    return {**base, "COLUMNS": "200", **extra}


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``stepweave ARGS`` from the repository root, stdin not a terminal."""
    return subprocess.run(
        [*stepweave(), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        env=environment(),
    )


@pytest.fixture(scope="session")
def compiled() -> dict[str, CompiledGuide]:
    return {name: compile_guide(load_guide(DATA / name)) for name in RUNBOOKS}
