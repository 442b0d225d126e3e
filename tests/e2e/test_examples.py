"""The Python examples in examples/ run and show what they claim."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example_shows_parallelism_condition_and_retries() -> None:
    proc = subprocess.run(
        [sys.executable, "examples/quickstart.py"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert "succeeded" in proc.stdout.splitlines()[0]
    assert "attempts=3" in lines["probe_queue"]
    assert "paged on-call: down: db" in lines["page_oncall"]
    # Three probes of 0.2-0.3 s ran in parallel: far less than their 0.55 s sum plus backoff.
    total = float(re.search(r"in ([0-9.]+)s", proc.stdout.splitlines()[0]).group(1))  # type: ignore[union-attr]
    assert total < 1.5
