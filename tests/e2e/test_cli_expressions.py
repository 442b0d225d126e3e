"""Hostile expressions through the real CLI: `validate` refuses them at once, `run` stays safe.

The files are the security review's reproductions (findings 1, 9 and 15), written afresh
into a temporary directory.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .test_cli import cli

DEEP = "(" * 400 + "1" + ")" * 400

HOSTILE = {
    "pickle": (
        'argv: [echo, "${{ steps.probe.output.parse_raw(\\"cos\\\\nsystem\\\\n(S\'touch {marker}\'\\\\ntR.\\",'
        " proto='pickle', allow_pickle=True) }}\"]",
        "'parse_raw' is not a method expressions may call",
    ),
    "statements": (
        "argv: [echo, \"${% for i in range(100000) %}${% for j in range(100000) %}${{ '' }}${% endfor %}${% endfor %}\"]",
        "statements",
    ),
    "power": ('argv: [echo, "${{ 9**(9**9) }}"]', None),
    "deep": (f'argv: [echo, "${{{{ {DEEP} }}}}"]', "nested too deeply"),
}


def flow(tmp_path: Path, args: str) -> Path:
    path = tmp_path / "flow.yaml"
    text = f"""name: hostile
steps:
  - id: probe
    tool: shell
    args:
      argv: [echo, hello]
  - id: a
    tool: shell
    timeout: 5
    args:
      {args}
"""
    path.write_text(text.replace("{marker}", str(tmp_path / "PWNED")))
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_validate_and_run_stay_safe_and_fast(tmp_path: Path, name: str) -> None:
    args, message = HOSTILE[name]
    path = flow(tmp_path, args)
    started = time.monotonic()
    checked = cli("validate", str(path), timeout=30)
    run = cli("run", str(path), "--no-journal", timeout=30)
    # Two CLI start-ups and nothing else: nothing is folded, looped or recursed into.
    assert time.monotonic() - started < 20
    for proc in (checked, run):
        assert "Traceback" not in proc.stderr, proc.stderr
    assert run.returncode != 0
    if message is not None:
        assert checked.returncode != 0 and message in checked.stderr, checked.stderr
    else:
        # 9 ** (9 ** 9) is valid syntax; it fails when evaluated, with a reason.
        assert "exceeds 4096 bits" in run.stderr + run.stdout
    assert not (tmp_path / "PWNED").exists()
