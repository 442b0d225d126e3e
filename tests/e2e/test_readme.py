"""The README stays true: its examples and the main example run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def run_python(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_readme_has_examples_and_commands() -> None:
    assert len(PYTHON_BLOCKS) >= 2
    assert "python examples/quickstart.py" in README
    assert "python -m pytest" in README


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path) -> None:
    script = tmp_path / f"readme_block_{index}.py"
    script.write_text(PYTHON_BLOCKS[index])
    proc = run_python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_first_readme_block_prints_merged_result(tmp_path: Path) -> None:
    script = tmp_path / "first.py"
    script.write_text(PYTHON_BLOCKS[0])
    proc = run_python(script, tmp_path)
    assert "['<html from https://a.example>', '<html from https://b.example>'] succeeded" in proc.stdout


def test_quickstart_example_shows_parallelism_condition_and_retries() -> None:
    proc = run_python(ROOT / "examples" / "quickstart.py", ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert "succeeded" in proc.stdout.splitlines()[0]
    assert "attempts=3" in lines["probe_queue"]
    assert "paged on-call: down: db" in lines["page_oncall"]
    # Three probes of 0.2-0.3 s ran in parallel: far less than their 0.55 s sum plus backoff.
    total = float(re.search(r"in ([0-9.]+)s", proc.stdout.splitlines()[0]).group(1))  # type: ignore[union-attr]
    assert total < 1.5
