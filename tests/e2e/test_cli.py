"""The `stepweave` command, through its real entry point in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TOOLS = "examples/example_tools.py"


def stepweave_command() -> list[str]:
    script = Path(sys.executable).with_name("stepweave")
    if script.exists():
        return [str(script)]
    found = shutil.which("stepweave")
    assert found, "the stepweave console script is not installed (pip install -e .)"
    return [found]


def cli(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*stepweave_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        # The journal goes where tests/e2e/conftest.py says, not under HOME (the repo).
        env={
            "PATH": "/usr/bin:/bin",
            "COLUMNS": "200",
            "HOME": str(ROOT),
            "STEPWEAVE_JOURNAL": os.environ["STEPWEAVE_JOURNAL"],
        },
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_run_health_check_example(tmp_path: Path) -> None:
    db = tmp_path / "health.db"
    proc = cli("run", "examples/health-check.yaml", "--set", f"db={db}", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stdout)
    assert lines[0]["event"] == "run_started"
    ended = next(line for line in lines if line["event"] == "run_ended")
    assert ended["result"]["status"] == "succeeded"
    outputs = lines[-1]["outputs"]
    assert lines[-1]["event"] == "workflow_outputs"
    assert outputs["recorded"] == {"checks": 3, "passed": 3}
    assert outputs["free_kb"] > 0 and outputs["uptime_s"] > 0
    assert outputs["kernel"].startswith("Linux")
    statuses = {tid: t["status"] for tid, t in ended["result"]["tasks"].items()}
    assert statuses["alert"] == "skipped" and statuses["record"] == "succeeded"
    # the four probes ran in parallel: each started before any of the others ended
    starts = {line["task_id"]: line["at"] for line in lines if line["event"] == "task_started"}
    ends = {line["task_id"]: line["at"] for line in lines if line["event"] == "task_ended"}
    probes = ["disk", "kernel", "uptime", "python"]
    assert max(starts[p] for p in probes) < min(ends[p] for p in probes)


def test_run_fan_out_example_with_tools_module_and_set_overrides() -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples" / "data").glob("*.txt"))
    expected = {f: len(re.findall(r"[a-z']+", (ROOT / f).read_text().lower())) for f in files}
    proc = cli(
        "run",
        "examples/fan-out-files.yaml",
        "--tools",
        EXAMPLE_TOOLS,
        "--json",
        "--set",
        f"files={json.dumps(files)}",
    )
    assert proc.returncode == 0, proc.stderr
    outputs = json_lines(proc.stdout)[-1]["outputs"]
    assert outputs["per_file"] == expected
    assert outputs["total_words"] == sum(expected.values())
    single = cli(
        "run",
        "examples/fan-out-files.yaml",
        "--tools",
        EXAMPLE_TOOLS,
        "--json",
        "--set",
        f'files=["{files[0]}"]',
    )
    assert json_lines(single.stdout)[-1]["outputs"]["per_file"] == {files[0]: expected[files[0]]}


def test_run_retry_and_branch_example_shows_summary() -> None:
    proc = cli("run", "examples/retry-and-branch.yaml", "--tools", EXAMPLE_TOOLS)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"queue\s.*succeeded\s.*3", proc.stdout), proc.stdout
    assert re.search(r"degraded\s.*skipped", proc.stdout), proc.stdout
    assert '"queue_attempts": 3' in proc.stdout


def test_failed_run_exits_1_with_a_one_line_reason(tmp_path: Path) -> None:
    flow = tmp_path / "fail.yaml"
    flow.write_text(
        "name: fail\nsteps:\n  - id: ok\n    tool: shell\n    args: {argv: [echo, ok]}\n"
        "  - id: broken\n    tool: shell\n    needs: [ok]\n    args: {argv: [sh, -c, 'echo nope >&2; exit 3'], check: true}\n"
    )
    proc = cli("run", str(flow))
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert f"{flow}:6:" in last and "step 'broken' failed" in last and "nope" in last


def test_for_each_over_non_list_names_file_line_and_step(tmp_path: Path) -> None:
    flow = tmp_path / "each.yaml"
    flow.write_text(
        "name: each\ninputs:\n  n: {type: integer, default: 3}\nsteps:\n"
        "  - id: loop\n    tool: wait\n    for_each: ${{ inputs.n }}\n    args: {seconds: 0}\n"
    )
    proc = cli("run", str(flow))
    assert proc.returncode == 1
    assert (
        f"{flow}:5:" in proc.stderr
        and "'loop'" in proc.stderr
        and "must evaluate to a list, got int" in proc.stderr
    )


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    assert cli("validate", "examples/health-check.yaml").returncode == 0
    flow = tmp_path / "bad.yaml"
    flow.write_text(
        "name: bad\nsteps:\n  - id: a\n    tool: shel\n    args: {argv: [ls]}\n"
        "  - id: b\n    tool: shell\n    args: {argv: ['${{ steps.c.output }}']}\n"
    )
    proc = cli("validate", str(flow))
    assert proc.returncode == 1
    assert "unknown tool 'shel'" in proc.stderr and "did you mean 'shell'" in proc.stderr
    assert "unknown step 'c'" in proc.stderr
    assert f"{flow}:3" in proc.stderr and f"{flow}:6" in proc.stderr


@pytest.mark.parametrize(
    ("fmt", "marker"), [("mermaid", "flowchart"), ("dot", "digraph"), ("json", '"nodes"')]
)
def test_graph_formats(fmt: str, marker: str) -> None:
    proc = cli("graph", "examples/health-check.yaml", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and "record" in proc.stdout
    if fmt == "json":
        data = json.loads(proc.stdout)
        assert {n["id"] for n in data["nodes"]} >= {"disk", "record", "summary"}


def test_schema_and_tools_listing() -> None:
    schema = json.loads(cli("schema").stdout)
    assert "steps" in json.dumps(schema)
    listing = cli("tools", "--tools", EXAMPLE_TOOLS)
    assert listing.returncode == 0
    for name in ("shell", "http", "sql", "read_file", "count_words", "flaky_service"):
        assert name in listing.stdout
    schemas = json.loads(cli("tools", "--json").stdout)
    assert any(s["function"]["name"] == "shell" for s in schemas)


def test_report_is_written(tmp_path: Path) -> None:
    report = tmp_path / "run.html"
    proc = cli("run", "examples/fan-out-files.yaml", "--tools", EXAMPLE_TOOLS, "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    html = report.read_text()
    for step in ("read", "read[0]", "count[2]", "summary"):
        assert f'data-task-id="{step}"' in html


def test_bad_usage(tmp_path: Path) -> None:
    assert cli("run", "examples/health-check.yaml", "--set", "novalue").returncode == 2
    missing = cli("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "nope.yaml" in missing.stderr
    bad_input = cli("run", "examples/fan-out-files.yaml", "--tools", EXAMPLE_TOOLS, "--set", "topp=3")
    assert (
        bad_input.returncode == 1 and "topp" in bad_input.stderr and "did you mean 'top'" in bad_input.stderr
    )
    bad_tools = cli("tools", "--tools", "no_such_module_xyz")
    assert bad_tools.returncode == 1 and "no_such_module_xyz" in bad_tools.stderr
