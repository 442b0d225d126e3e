"""A second set of guides written for this project, after two rounds of tuning.

``data/tsg-unseen2`` holds five guides (a KubeJobFailed-style alert runbook, a Redis memory
runbook, a cloud KB article, a StepFly Kafka TSG, an Elasticsearch runbook) whose topics and
phrasings differ from the gold ten and the first unseen set, with gold plan DAGs annotated by
hand before the compiler was run on them (see its README). Before any fix they scored node F1
0.86, edge F1 0.65, conditional-edge recall 0.29 and two unsafe commands (plugin calls that
act were read as queries). These floors keep the rules fixed since from sliding back;
scored in-process by the gold set's own ``score.py``, like ``test_unseen.py``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from planners.tsg import compile_guide, load_guide
from planners.tsg.plan import build_plan

DATA = Path(__file__).parent / "data"
UNSEEN = DATA / "tsg-unseen2"
GUIDES = sorted(p.stem for p in (UNSEEN / "guides").glob("*.md"))


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tsg_gold_score", DATA / "tsg-gold" / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scorer = _scorer()
    out = tmp_path_factory.mktemp("plandag")
    per: dict[str, dict[str, Any]] = {}
    total: dict[str, int] = {}
    for name in GUIDES:
        guide = UNSEEN / "guides" / f"{name}.md"
        plan = build_plan(guide.read_text(encoding="utf-8"), str(guide))
        (out / f"{name}.json").write_text(json.dumps(plan.as_plandag()), encoding="utf-8")
        counts = scorer.score(UNSEEN / "gold" / f"{name}.json", out / f"{name}.json")
        per[name] = scorer.metrics(counts)
        for key, value in counts.items():
            if key != "unsafe_list":
                total[key] = total.get(key, 0) + value
    return {"guides": per, "total": scorer.metrics(total)}


def test_the_set_is_there() -> None:
    assert len(GUIDES) == 5
    assert all((UNSEEN / "gold" / f"{name}.json").exists() for name in GUIDES)


def test_second_unseen_set_keeps_its_floors(scores: dict[str, Any]) -> None:
    total = scores["total"]
    assert total["node_f1"] >= 0.90, total
    assert total["edge_f1"] >= 0.84, total
    assert total["cond_r"] >= 0.66, total
    assert total["cmd_p"] >= 0.95 and total["cmd_r"] >= 0.88, total
    assert total["mut_acc"] >= 0.90, total  # misses are on the safe side (curl -d to a read API)
    assert total["unsafe"] == 0, total


@pytest.mark.parametrize("name", GUIDES)
def test_no_guide_of_the_second_set_runs_an_ungated_remedy(name: str, scores: dict[str, Any]) -> None:
    row = scores["guides"][name]
    assert row["unsafe"] == 0, row
    assert row["node_f1"] >= 0.8, row


@pytest.mark.parametrize("name", GUIDES)
def test_every_guide_of_the_second_set_compiles_to_a_valid_workflow(name: str) -> None:
    compiled = compile_guide(load_guide(UNSEEN / "guides" / f"{name}.md"))
    assert compiled.waves()
    assert compiled.workflow().to_graph() is not None


def test_a_stepfly_tool_call_acts_unless_its_name_reads() -> None:
    from planners.tsg.guide_commands import classify_text

    assert classify_text('ScaleDeployment(cluster="${c}", replicas=3)', "plugin-call")
    assert classify_text("Checkout(branch=1)", "plugin-call")
    assert not classify_text('GetNodeHealth(node="${n}")', "plugin-call")
