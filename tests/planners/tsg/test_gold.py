"""The ten gold-annotated guides: the plan DAG we extract, scored by the gold set's own scorer.

The guides, gold plan DAGs and ``score.py`` are copies kept in ``data/tsg-gold`` (see its
README for attribution), so this runs on a clean checkout. Compiling is in-process (one
CLI run checks ``--format plandag`` itself). The targets are the issue's, micro-averaged.
``benchmarks/tsg_gold.py`` prints the same table with the naive baseline beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planners.tsg import compile_guide, load_guide

from .scoring import score_folder

GOLD = Path(__file__).parent / "data" / "tsg-gold"
GUIDES = sorted(p.stem for p in (GOLD / "guides").glob("*.md"))


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return score_folder(GOLD, tmp_path_factory.mktemp("plandag"))


def test_ten_guides_meet_the_targets(scores: dict[str, Any]) -> None:
    total = scores["total"]
    assert total["node_f1"] >= 0.90
    assert total["edge_f1"] >= 0.90
    assert total["cond_r"] >= 0.80
    assert total["cmd_p"] >= 0.90 and total["cmd_r"] >= 0.90
    assert total["mut_acc"] >= 0.97
    assert total["where_acc"] >= 0.90
    assert total["unsafe"] == 0


@pytest.mark.parametrize("name", GUIDES)
def test_no_guide_falls_far_behind(name: str, scores: dict[str, Any]) -> None:
    row = scores["guides"][name]
    assert row["node_f1"] >= 0.95, row
    assert row["edge_f1"] >= 0.75, row
    assert row["unsafe"] == 0, row


def test_plandag_from_the_cli_is_the_plan(tmp_path: Path) -> None:
    guide = GOLD / "guides" / "gitlab_sidekiq_stats_missing.md"
    target = tmp_path / "plan.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "tsg",
            "compile",
            str(guide),
            "--format",
            "plandag",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(target.read_text())
    names = [n["node"] for n in data["nodes"]]
    assert names[0] == "start" and names[-1] == "end"
    steps = [n for n in data["nodes"] if n["node"] not in ("start", "end")]
    assert all(n["lines"][0] <= n["lines"][1] and n["kind"] for n in steps)
    start = next(n for n in steps if any(c["text"] == "sudo sv start gitlab-monitor" for c in n["commands"]))
    assert start["kind"] == "remedy" and start["commands"][0] == {
        "line": 61,
        "text": "sudo sv start gitlab-monitor",
        "mutating": True,
        "where": "node",
    }
    assert {g["remedy"] for g in data["gates"]} >= {start["node"]}
    assert all("condition" in e for n in data["nodes"] for e in n["output_edges"])


def test_a_remedy_is_never_reachable_without_its_diagnosis() -> None:
    """--yes approves commands; the workflow still reaches a remedy only through its judged condition."""
    compiled = compile_guide(load_guide(GOLD / "guides" / "gitlab_sidekiq_stats_missing.md"))
    for text in ("sudo sv start gitlab-monitor", "sudo chef-client"):
        step = next(s for s in compiled.steps if s.args.get("command") == text)
        # typed on the node ("On the master node, run:"): shown to the operator, never run here
        assert step.kind == "manual" and "on the node" in step.args["instruction"]
        judges = [g for g, negated in step.gates if not negated]
        assert judges and compiled.step(judges[0]).kind == "judge"


@pytest.mark.parametrize("name", GUIDES)
def test_every_gold_guide_compiles_to_a_valid_workflow(name: str) -> None:
    compiled = compile_guide(load_guide(GOLD / "guides" / f"{name}.md"))
    assert compiled.waves()  # dependency order, no cycle
    workflow = compiled.workflow()
    assert workflow.to_graph() is not None


def test_lint_on_the_gold_guides_reports_only_real_defects() -> None:
    """Per-rule precision on these ten (docs/tsg.md): what lint reports by default was right."""
    from planners.tsg import lint_guide

    reported = {
        (name, f.line, f.code)
        for name in GUIDES
        for f in lint_guide(load_guide(GOLD / "guides" / f"{name}.md"))
        if f.severity != "note"
    }
    assert reported == {
        ("ocp_mcc_drain_error", 95, "unsourced-placeholder"),  # $NS: the guide never says
        ("ocp_ovn_controller_disconnected_sbdb", 92, "unsourced-placeholder"),  # <primary_interface>
    }
