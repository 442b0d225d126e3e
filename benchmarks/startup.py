"""Start-up time of the ``stepweave`` command, as a ratio to ``python -c pass``.

    .venv/bin/python -m benchmarks.startup            # 15 runs of each, medians
    .venv/bin/python -m benchmarks.startup --reps 30 --check

Each command is a fresh process (the console script of this environment); the runs of
the commands are interleaved, so a busy machine slows them all alike and the ratios hold
where absolute times do not. Targets: ``--help`` within 8x of ``python -c pass``,
``validate`` of a small workflow within 10x. ``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_WORKFLOW = """\
name: small
steps:
  - id: hello
    tool: shell
    args: {argv: [echo, hello]}
  - id: shout
    tool: shell
    args: {argv: [echo, "${{ steps.hello.output.stdout | upper }}"]}
  - id: done
    tool: wait
    args: {seconds: 0}
    needs: shout
"""

#: label, arguments after the console script (None: the baseline), target ratio.
CASES: list[tuple[str, list[str] | None, float | None]] = [
    ("python -c pass", None, None),
    ("stepweave --version", ["--version"], None),
    ("stepweave --help", ["--help"], 8.0),
    ("stepweave validate small.yaml", ["validate", "{flow}"], 10.0),
]


def _command(args: list[str] | None, flow: Path) -> list[str]:
    if args is None:
        return [sys.executable, "-c", "pass"]
    script = Path(sys.executable).with_name("stepweave")
    return [str(script), *(str(flow) if a == "{flow}" else a for a in args)]


def measure(reps: int) -> dict[str, float]:
    """Median wall time (s) of each case over ``reps`` interleaved runs."""
    times: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        flow = Path(tmp, "small.yaml")
        flow.write_text(SMALL_WORKFLOW, encoding="utf-8")
        for rep in range(reps + 1):  # the first round warms the disk cache; not counted
            for label, args, _ in CASES:
                command = _command(args, flow)
                start = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True, cwd=tmp)
                if rep:
                    times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    options = parser.parse_args()
    medians = measure(options.reps)
    base = medians[CASES[0][0]]
    missed = []
    print("| command | median (ms) | × python -c pass | target |")
    print("|---|---:|---:|---:|")
    for label, _, target in CASES:
        ratio = medians[label] / base
        mark = "" if target is None else (f"≤ {target:g}×" + ("" if ratio <= target else " MISSED"))
        if target is not None and ratio > target:
            missed.append(label)
        print(f"| {label} | {medians[label] * 1000:.0f} | {ratio:.1f} | {mark} |")
    return 1 if options.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
