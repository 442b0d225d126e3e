"""docs/tsg.md stays true: its Python example runs, its linter table lists every code the linter has."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT

DOC = (ROOT / "docs" / "tsg.md").read_text()


def test_the_python_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", DOC, re.DOTALL)
    assert block is not None
    code = block.group(1).replace('"runbook.md"', '"examples/tsg/service-health.md"')
    code += "assert compiled.parallel('check_memory', 'check_the_load')\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_linter_table_is_complete() -> None:
    source = (ROOT / "planners" / "tsg" / "lint.py").read_text()
    codes = set(re.findall(r"\"(?:error|warning)\",\s*\"([a-z]+-[a-z-]+)\"", source))
    assert len(codes) >= 10  # the pattern still finds the linter's codes
    documented = set(re.findall(r"\| `([a-z-]+)`(?: / `([a-z-]+)`)? \|", DOC))
    flat = {c for pair in documented for c in pair if c}
    assert codes <= flat, codes - flat
