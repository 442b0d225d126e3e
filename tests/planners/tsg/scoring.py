"""Score a folder of guides against its gold PlanDAGs with the gold set's own scorer.

One place for what test_gold.py, test_unseen.py and test_unseen2.py all do: compile each
guide in-process (no CLI start-up), write its PlanDAG, score it, and micro-average.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from planners.tsg.plan import build_plan

DATA = Path(__file__).parent / "data"
SCORER = DATA / "tsg-gold" / "score.py"


def guide_names(folder: Path) -> list[str]:
    return sorted(p.stem for p in (folder / "guides").glob("*.md"))


def _scorer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tsg_gold_score", SCORER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_folder(folder: Path, out: Path) -> dict[str, Any]:
    """``{"guides": {name: metrics}, "total": micro-averaged metrics}`` for ``folder``."""
    scorer = _scorer()
    per: dict[str, dict[str, Any]] = {}
    total: dict[str, int] = {}
    for name in guide_names(folder):
        guide = folder / "guides" / f"{name}.md"
        plan = build_plan(guide.read_text(encoding="utf-8"), str(guide))
        (out / f"{name}.json").write_text(json.dumps(plan.as_plandag()), encoding="utf-8")
        counts = scorer.score(folder / "gold" / f"{name}.json", out / f"{name}.json")
        per[name] = scorer.metrics(counts)
        for key, value in counts.items():
            if key != "unsafe_list":
                total[key] = total.get(key, 0) + value
    return {"guides": per, "total": scorer.metrics(total)}
