"""Guides written for this project after the rules were tuned on the ten gold guides.

``data/tsg-unseen`` holds four guides in the shapes of public troubleshooting docs (an alert
runbook, a ``## Step N - Title`` KB article, a ``### N.`` database runbook, a StepFly TSG)
with gold plan DAGs annotated by hand before the compiler was run on them (see its README).
They first scored node F1 0.78, edge F1 0.72, conditional-edge recall 0.64 and one unsafe
command; the rules that failed were fixed. These floors keep those rules from sliding back.
Scored by the gold set's own ``score.py``, in-process like ``test_gold.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planners.tsg import compile_guide, load_guide
from planners.tsg.guide_commands import classify_text

from .scoring import score_folder

DATA = Path(__file__).parent / "data"
UNSEEN = DATA / "tsg-unseen"
GUIDES = sorted(p.stem for p in (UNSEEN / "guides").glob("*.md"))


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return score_folder(UNSEEN, tmp_path_factory.mktemp("plandag"))


def test_the_set_is_there() -> None:
    assert len(GUIDES) == 4
    assert all((UNSEEN / "gold" / f"{name}.json").exists() for name in GUIDES)


def test_unseen_guides_keep_their_floors(scores: dict[str, Any]) -> None:
    total = scores["total"]
    assert total["node_f1"] >= 0.95, total
    assert total["edge_f1"] >= 0.95, total
    assert total["cond_r"] >= 0.90, total
    assert total["cmd_p"] >= 0.95 and total["cmd_r"] >= 0.95, total
    assert total["mut_acc"] >= 0.90, total  # misses are on the safe side: a loop over $(seq …), sar
    assert total["where_acc"] >= 0.95, total
    assert total["unsafe"] == 0, total


@pytest.mark.parametrize("name", GUIDES)
def test_no_unseen_guide_falls_far_behind(name: str, scores: dict[str, Any]) -> None:
    row = scores["guides"][name]
    assert row["node_f1"] >= 0.9, row
    assert row["edge_f1"] >= 0.85, row
    assert row["unsafe"] == 0, row


@pytest.mark.parametrize("name", GUIDES)
def test_every_unseen_guide_compiles_to_a_valid_workflow(name: str) -> None:
    compiled = compile_guide(load_guide(UNSEEN / "guides" / f"{name}.md"))
    assert compiled.waves()
    assert compiled.workflow().to_graph() is not None


def test_an_edit_session_mutates_and_a_plain_export_does_not() -> None:
    assert classify_text("kubectl -n $NS edit configmap $CM", "shell")
    assert classify_text("oc edit deployment/x", "shell")
    assert not classify_text("kubectl -n x exec -it pod -- sh", "shell")
    assert not classify_text("export NAMESPACE=payments", "shell")
    assert classify_text("export PATH=/tmp:$PATH", "shell")
