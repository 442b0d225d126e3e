"""StepFly's guide format (``<PLUGIN_N>`` SQL blocks, ``{param}``) and re-using a reviewed plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from planners.tsg import compile_guide, parse_guide
from planners.tsg.plan import PlanError, build_plan, plan_from_plandag

GUIDE = """# Checkout Errors Troubleshooting Guide

## Step 1 - Collect Parameters

Retrieve the following parameters from the incident:
- `region`: the affected region
- `start_time`: the incident start time

**Important**: After collecting parameters, start Steps 2 through 3 in parallel.

## Step 2 - Check Release Regression

Run the following query.

<PLUGIN_1>
SELECT version, COUNT(*) AS failures
FROM checkout_log
WHERE region = '{region}' AND ts >= '{start_time}'
GROUP BY version
</PLUGIN_1>

If the newest version shows more than 10 failures, recommend a rollback. **This is a potential resolution.**

Otherwise, proceed to Step 4.

## Step 3 - Check Payment Provider

<PLUGIN_2>
SELECT provider, AVG(latency_ms) AS latency FROM payments WHERE region = '{region}' GROUP BY provider
</PLUGIN_2>

Note the slow providers. Proceed to Step 4.

## Step 4 - Summarize

Consolidate the findings of Steps 2-3 into an action plan.
"""


def edges(text: str) -> set[tuple[str, str, bool]]:
    plan = build_plan(text)
    title = {n.id: n.title.split()[0] for n in plan.nodes} | {"start": "start", "end": "end"}
    return {(title[e.src], title[e.dst], bool(e.condition)) for e in plan.edges}


def test_step_headings_plugins_parallel_ranges_and_jumps() -> None:
    plan = build_plan(GUIDE)
    assert [n.number for n in plan.nodes] == [1, 2, 3, 4]
    assert [n.title for n in plan.nodes] == [
        "Collect Parameters",
        "Check Release Regression",
        "Check Payment Provider",
        "Summarize",
    ]
    # SQL inside <PLUGIN_N> is a command at its first line, not prose
    sql = [(c.line, c.language, c.mutating) for n in plan.nodes for c in n.commands]
    assert sql == [(16, "sql", False), (23 + 6, "sql", False)]
    assert edges(GUIDE) == {
        ("start", "Collect", False),
        ("Collect", "Check", False),  # "start Steps 2 through 3 in parallel": both from step 1
        ("Check", "end", True),  # "recommend a rollback. This is a potential resolution."
        ("Check", "Summarize", True),  # "Otherwise, proceed to Step 4."
        ("Check", "Summarize", False),  # step 3: "Proceed to Step 4."
        ("Summarize", "end", False),
    }
    regression, provider = plan.nodes[1], plan.nodes[2]
    assert not any(e.src == regression.id and e.dst == provider.id for e in plan.edges)  # not a chain


def test_plugin_params_are_bound_sql_parameters() -> None:
    compiled = compile_guide(parse_guide(GUIDE, "stepfly.md"))
    query = next(s for s in compiled.steps if s.tool == "sql" and "checkout_log" in s.args["query"])
    assert "'{region}'" not in query.args["query"] and "region = ?" in query.args["query"]
    assert query.args["params"] == ["${{ inputs.region }}", "${{ inputs.start_time }}"]
    assert {"region", "start_time"} <= set(compiled.inputs)
    # "Otherwise" is decided once: the summary runs when the regression was not found.
    summary = compiled.step("summarize")
    assert summary.join == "any" and "not steps.if_the_newest_version_shows_mor." in str(summary.when)


def test_a_reviewed_plan_is_used_and_cannot_add_commands(tmp_path: Path) -> None:
    guide = tmp_path / "stepfly.md"
    guide.write_text(GUIDE)
    data = build_plan(GUIDE, str(guide)).as_plandag()
    # the reviewer drops step 3 and its edges: the workflow follows the file
    dropped = next(n["node"] for n in data["nodes"] if n.get("description") == "Check Payment Provider")
    data["nodes"] = [n for n in data["nodes"] if n["node"] != dropped]
    for node in data["nodes"]:
        node["input_edges"] = [e for e in node["input_edges"] if dropped not in e["edge"]]
        node["output_edges"] = [e for e in node["output_edges"] if dropped not in e["edge"]]
    plan = plan_from_plandag(data, GUIDE, str(guide))
    compiled = compile_guide(parse_guide(GUIDE, str(guide)), plan)
    assert not any("payments" in str(s.args.get("query")) for s in compiled.steps)
    # a command the guide does not have at that line is refused, as is a cycle
    forged = json.loads(json.dumps(data))
    step = next(n for n in forged["nodes"] if n.get("commands"))
    step["commands"].append({"line": 3, "text": "rm -rf /", "mutating": False, "where": "local"})
    with pytest.raises(PlanError, match="no command at line 3"):
        plan_from_plandag(forged, GUIDE)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "tsg",
            "run",
            str(guide),
            "--plan",
            str(plan_file),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "checkout_log" in run.stdout and "payments" not in run.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(forged))
    refused = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "tsg", "run", str(guide), "--plan", str(bad), "--dry-run"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "no command at line 3" in refused.stderr


def test_step_n_dash_headings_are_jump_targets() -> None:
    from planners.tsg import lint_guide

    codes = {f.code for f in lint_guide(parse_guide(GUIDE, "stepfly.md"))}
    assert "unknown-jump-target" not in codes  # "proceed to Step 4" → "## Step 4 - Summarize"
