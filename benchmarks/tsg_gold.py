"""Troubleshooting guides against hand-annotated gold plan DAGs (StepFly's PlanDAG, with lines).

    .venv/bin/python -m benchmarks.tsg_gold                 # our compiler and the naive baseline
    .venv/bin/python -m benchmarks.tsg_gold --gold DIR      # another gold set (guides/, gold/, score.py)
    .venv/bin/python -m benchmarks.tsg_gold --keep OUT      # keep the predicted PlanDAGs in OUT
    .venv/bin/python -m benchmarks.tsg_gold --dir tests/planners/tsg/data/tsg-unseen
                                                            # guides/ + gold/ scored by the gold set's score.py

Every guide in ``GOLD/guides/`` is compiled with ``stepweave tsg compile GUIDE --format
plandag`` (the real CLI, one process per guide), the gold set's own ``score.py`` compares
each prediction with ``GOLD/gold/``, and the same is done for ``baseline_docorder.py`` (a
naive extractor that chains every heading in document order). The gold set is
``../shared/tsg-gold`` next to the repository when it is there, else the copy kept in
``tests/planners/tsg/data/tsg-gold``. Prints the scorer's tables (per guide, then the
micro-averaged total) and a check of the targets; exit 1 with ``--check`` if one is missed.

Targets (micro-averaged, no LLM): node F1 >= 0.90, edge F1 >= 0.90, conditional-edge
recall >= 0.80, command precision and recall >= 0.90, mutating accuracy >= 0.97, where
accuracy >= 0.90, unsafe commands = 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "tsg-gold"
BUNDLED = ROOT / "tests" / "planners" / "tsg" / "data" / "tsg-gold"
STEPWEAVE = [sys.executable, "-m", "orchestrator.cli"]

TARGETS: dict[str, tuple[str, float]] = {
    "node_f1": (">=", 0.90),
    "edge_f1": (">=", 0.90),
    "cond_r": (">=", 0.80),
    "cmd_p": (">=", 0.90),
    "cmd_r": (">=", 0.90),
    "mut_acc": (">=", 0.97),
    "where_acc": (">=", 0.90),
    "unsafe": ("<=", 0),
}


def gold_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    return SHARED if (SHARED / "gold").is_dir() else BUNDLED


def compile_all(gold: Path, out: Path) -> list[str]:
    """Compile every guide with the CLI; returns the guides that failed to compile."""
    failed = []
    for guide in sorted((gold / "guides").glob("*.md")):
        target = out / f"{guide.stem}.json"
        done = subprocess.run(
            [*STEPWEAVE, "tsg", "compile", str(guide), "--format", "plandag", "-o", str(target)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if done.returncode != 0:
            failed.append(f"{guide.name}: {done.stderr.strip()[-300:]}")
    return failed


def scorer_of(gold: Path) -> Path:
    """A set with only guides/ and gold/ (``--dir``) is scored by the gold set's own scorer."""
    own = gold / "score.py"
    return own if own.exists() else gold_dir(None) / "score.py"


def score(gold: Path, pred: Path) -> tuple[str, dict[str, Any]]:
    scorer = [sys.executable, str(scorer_of(gold)), "--dir", str(gold / "gold"), str(pred)]
    table = subprocess.run(scorer, capture_output=True, text=True, check=True).stdout
    data = json.loads(subprocess.run([*scorer, "--json"], capture_output=True, text=True, check=True).stdout)
    return table, data


def check(total: dict[str, Any]) -> list[str]:
    missed = []
    for metric, (op, bound) in TARGETS.items():
        value = total.get(metric)
        ok = value is not None and (value >= bound if op == ">=" else value <= bound)
        if not ok:
            missed.append(f"{metric} = {value if value is None else round(value, 3)} (target {op} {bound})")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gold", help="gold set directory (guides/, gold/, score.py)")
    parser.add_argument(
        "--dir", help="another annotated set (guides/, gold/); scored by the gold set's score.py"
    )
    parser.add_argument("--keep", help="write the predicted PlanDAGs here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--no-baseline", action="store_true", help="skip the document-order baseline")
    args = parser.parse_args(argv)
    gold = Path(args.dir) if args.dir else gold_dir(args.gold)
    with tempfile.TemporaryDirectory() as tmp:
        pred = Path(args.keep) if args.keep else Path(tmp) / "stepweave"
        pred.mkdir(parents=True, exist_ok=True)
        failed = compile_all(gold, pred)
        table, data = score(gold, pred)
        print(f"## stepweave tsg compile --format plandag (gold: {gold})\n\n```\n{table}```")
        for problem in failed:
            print(f"compile failed: {problem}")
        if not args.no_baseline:
            baseline = gold / "baseline_docorder.py"
            if not baseline.exists():
                baseline = gold_dir(None) / "baseline_docorder.py"
            base = Path(tmp) / "baseline"
            base.mkdir()
            subprocess.run(
                [
                    sys.executable,
                    str(baseline),
                    "--dir",
                    str(gold / "guides"),
                    str(base),
                ],
                check=True,
            )
            base_table, _ = score(gold, base)
            total = base_table.strip().splitlines()
            print(f"\n## naive document-order baseline\n\n```\n{total[0]}\n{total[-1]}\n```")
    missed = check(data["total"])
    print("\ntargets: " + ("all met" if not missed else "missed: " + "; ".join(missed)))
    return 1 if (missed or failed) and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
