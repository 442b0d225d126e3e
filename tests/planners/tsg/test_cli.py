"""`stepweave tsg …` as a real process: compile, lint, dry runs and end-to-end runs of the examples."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from planners import load_workflow
from planners.llm.testing import OpenAITestServer, ScriptedReply

from .conftest import DATA, ROOT, cli, environment, stepweave

DISK = "examples/tsg/disk-usage.md"
HEALTH = "examples/tsg/service-health.md"


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def memory(stdout: str) -> dict[str, Any]:
    return next(e["steps"] for e in events(stdout) if e.get("event") == "guide_memory")


def data_dir(tmp_path: Path, rotated_kb: int) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "app.log").write_text("today\n")
    (directory / "app.log.1").write_bytes(b"x" * rotated_kb * 1024)
    return directory


def test_disk_guide_cleans_up_when_usage_is_high(tmp_path: Path) -> None:
    directory = data_dir(tmp_path, rotated_kb=950)
    db = tmp_path / "metrics.db"
    result = cli(
        "tsg", "run", DISK, "--set", f"DATA_DIR={directory}", "--set", f"database={db}", "--yes", "--json"
    )
    assert result.returncode == 0, result.stderr
    steps = memory(result.stdout)
    assert (
        steps["if_the_usage_is_above_85"]["holds"] is True
        and steps["if_the_usage_is_above_85"]["by"] == "test"
    )
    assert "the_usage_is_below_the_threshold" not in steps  # the other branch was skipped
    assert not (directory / "app.log.1").exists() and (directory / "app.log").exists()
    loop = steps["repeat_verify_take_a_new_sample"]
    assert loop["satisfied"] is True and loop["iterations"] == 1
    with sqlite3.connect(db) as conn:  # two real samples: before and after the cleanup
        before, after = (row[0] for row in conn.execute("SELECT used_pct FROM disk ORDER BY id"))
    assert before > 85 > after


def test_disk_guide_takes_the_false_positive_branch(tmp_path: Path) -> None:
    directory = data_dir(tmp_path, rotated_kb=100)
    db = tmp_path / "metrics.db"
    result = cli(
        "tsg", "run", DISK, "--set", f"DATA_DIR={directory}", "--set", f"database={db}", "--yes", "--json"
    )
    assert result.returncode == 0, result.stderr
    steps = memory(result.stdout)
    assert steps["if_the_usage_is_above_85"]["holds"] is False
    assert "false positive" in steps["the_usage_is_below_the_threshold"]["stdout"]
    assert "delete_the_rotated_logs" not in steps and (directory / "app.log.1").exists()


def test_mutating_steps_are_refused_without_yes_and_a_terminal(tmp_path: Path) -> None:
    directory = data_dir(tmp_path, rotated_kb=950)
    result = cli(
        "tsg", "run", DISK, "--set", f"DATA_DIR={directory}", "--set", f"database={tmp_path / 'm.db'}"
    )
    assert result.returncode == 1
    assert "disk-usage.md:23: step 'take_a_fresh_usage_sample' failed: ApprovalDenied" in result.stderr
    assert (directory / "app.log.1").exists()


def test_health_guide_runs_its_checks_in_parallel(tmp_path: Path) -> None:
    result = cli(
        "tsg",
        "run",
        HEALTH,
        "--set",
        f"database={tmp_path / 'h.db'}",
        "--yes",
        "--json",
        "--report",
        str(tmp_path / "r.html"),
    )
    assert result.returncode == 0, result.stderr
    # The author lists four read-only checks one after the other: order is not needed between
    # them, so they run at once. The slowest endpoints come after the error-rate decision.
    checks = {"check_free_disk_space", "check_memory", "check_the_load", "check_the_error_rate"}
    order = [(e["event"], e.get("task_id")) for e in events(result.stdout)]
    first_end = min(i for i, (kind, task) in enumerate(order) if kind == "task_ended" and task in checks)
    ready = {task for kind, task in order[:first_end] if kind == "task_ready"}
    assert checks <= ready  # all four were dispatched together, before any of them finished
    steps = memory(result.stdout)
    assert "check_the_slowest_endpoints" not in steps  # "otherwise": the error rate was too high
    assert steps["check_the_error_rate"]["rows"] == [{"error_rate_pct": 1.15}]
    assert steps["if_the_error_rate_is_above_1"]["holds"] is True  # so the mitigation ran
    assert steps["find_the_failing_endpoint"]["rows"][0]["endpoint"] == "/api/orders"
    assert (tmp_path / "r.html").stat().st_size > 1000


def test_dry_run_prints_filled_commands_and_runs_nothing(tmp_path: Path) -> None:
    directory = data_dir(tmp_path, rotated_kb=950)
    incident = tmp_path / "incident.json"
    incident.write_text(
        json.dumps({"alerts": [{"labels": {"alertname": "DiskUsageHigh", "data_dir": str(directory)}}]})
    )
    result = cli("tsg", "run", DISK, "--dry-run", "--incident", str(incident))
    assert result.returncode == 0, result.stderr
    assert f"$ find {directory} -name *.log.1 -delete" in result.stdout
    assert "delete_the_rotated_logs [shell, needs approval]" in result.stdout
    assert "repeat up to 3x until: the usage is below 85%" in result.stdout
    assert (directory / "app.log.1").exists()
    target_down = cli(
        "tsg", "run", str(DATA / "openshift-target-down.md"), "--dry-run", "--set", "NAMESPACE=prod"
    )
    assert target_down.returncode == 0, target_down.stderr
    assert "$ oc get servicemonitor <SERVICE_MONITOR_NAME?> -n prod -o yaml" in target_down.stdout
    assert "missing for a real run: --set POD_NAME=…" in target_down.stdout


def test_compile_writes_a_workflow_with_guide_line_comments(tmp_path: Path) -> None:
    output = tmp_path / "odf.flow.yaml"
    result = cli("tsg", "compile", str(DATA / "openshift-odf-diagnosis.md"), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "7 commands, 2 conditions" in result.stderr
    text = output.read_text()
    assert "# guide line 56: ceph status" in text and "# read: ceph status only reads" in text
    workflow = load_workflow(output)
    assert len(workflow.steps) == 13
    valid = cli("validate", str(output), "--tools", "planners.tsg.workflow_tools")
    assert valid.returncode == 0, valid.stderr


def test_a_compiled_guide_runs_as_a_plain_workflow(tmp_path: Path) -> None:
    flow = tmp_path / "health.flow.yaml"
    assert cli("tsg", "compile", HEALTH, "-o", str(flow)).returncode == 0
    db = tmp_path / "h.db"
    result = cli(
        "run",
        str(flow),
        "--tools",
        "planners.tsg.workflow_tools",
        "--set",
        f"database={db}",
        "--yes",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    ended = {e["task_id"]: e for e in events(result.stdout) if e.get("event") == "task_ended"}
    assert ended["if_the_error_rate_is_above_1"]["output"]["by"] == "test"
    assert ended["find_the_failing_endpoint"]["status"] == "succeeded"


def test_lint_exit_codes() -> None:
    bad = cli("tsg", "lint", str(DATA / "openshift-odf-diagnosis.md"))
    assert bad.returncode == 1
    assert "openshift-odf-diagnosis.md:61: error: refers to section 'Troubleshooting'" in bad.stdout
    good = cli("tsg", "lint", HEALTH)
    assert good.returncode == 0, good.stdout + good.stderr


def test_bad_input_is_reported_with_file_and_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.md"
    empty.write_text("# Nothing\n\nNo steps here, only words.\n")
    result = cli("tsg", "compile", str(empty))
    assert result.returncode == 1 and f"{empty}:1: no steps found" in result.stderr
    missing = cli("tsg", "lint", str(tmp_path / "missing.md"))
    assert missing.returncode == 1 and "missing.md: cannot read the guide" in missing.stderr


def test_query_languages_need_a_registered_tool(tmp_path: Path) -> None:
    guide = tmp_path / "q.md"
    guide.write_text(
        "# Q\n\n## Check errors\n\n```promql\nsum(rate(errors_total[5m]))\n```\n\nIt should be 0.\n"
    )
    result = cli("tsg", "run", str(guide), "--yes")
    assert result.returncode == 1 and "register a tool for promql with --tools" in result.stderr
    tools = tmp_path / "fake_prom.py"
    tools.write_text(
        "from tools import tool\n\n@tool\ndef promql(query: str) -> float:\n    return 0.0 if 'errors' in query else 1.0\n"
    )
    ran = cli("tsg", "run", str(guide), "--yes", "--tools", str(tools), "--json")
    assert ran.returncode == 0, ran.stderr
    assert memory(ran.stdout) == {"check_errors": 0.0}


async def test_llm_resolves_prose_steps_and_judges_prose_conditions(tmp_path: Path) -> None:
    guide = tmp_path / "g.md"
    guide.write_text(
        "# G\n\n1. Check which kernel this machine runs.\n\n   If it looks like Linux, go to step 3.\n\n"
        "2. Note that this is not Linux:\n\n   ```shell\n   echo other\n   ```\n\n   Stop here.\n\n"
        "3. Note that it is Linux:\n\n   ```shell\n   echo linux\n   ```\n"
    )
    proposal = {
        "steps": [{"id": "s3", "command": "uname -s", "language": "shell"}],
        "conditions": [{"id": "j5", "test": None}],
    }
    async with OpenAITestServer() as server:
        server.queue(
            ScriptedReply.json(proposal), ScriptedReply.json({"holds": True, "reason": "uname says Linux"})
        )
        process = await asyncio.create_subprocess_exec(
            *stepweave(), "tsg", "run", str(guide), "--llm", "--json",
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=environment(OPENAI_BASE_URL=server.base_url, STEPWEAVE_MODEL=server.model),
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
        assert server.pending == 0
        assert "Check which kernel" in server.completions[0].text  # the prose step was asked about
        assert "Linux" in server.completions[1].text  # uname's output went to the judge
    assert "llm: line 3: 'Check which kernel this machine runs.' → `uname -s` (read)" in stderr.decode()
    steps = memory(stdout.decode())
    assert steps["check_which_kernel_this_machine"]["stdout"] == "Linux\n"
    judge = next(v for k, v in steps.items() if k.startswith("if_"))
    assert (judge["holds"], judge["by"]) == (True, "llm")
    assert (
        steps["note_that_it_is_linux"]["stdout"] == "linux\n" and "note_that_this_is_not_linux" not in steps
    )


async def test_llm_needs_a_configured_server() -> None:
    process = await asyncio.create_subprocess_exec(
        *stepweave(), "tsg", "compile", HEALTH, "--llm",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environment(),
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2 and "OPENAI_BASE_URL" in stderr.decode()


LOOP_GUIDE = """# Warm-up

1. Start the counter:

   ```shell
   rm -f {state}
   ```

2. Warm the cache once more:

   ```shell
   sh -c "echo hit >> {state}"
   ```

3. Count the warm-ups:

   ```shell
   wc -l < {state}
   ```

   If the count is below {target}, go back to step 2 (at most 4 times, every 0.1 seconds).
"""


def test_a_back_jump_runs_as_a_bounded_loop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    guide = tmp_path / "loop.md"
    guide.write_text(LOOP_GUIDE.format(state=state, target=3))
    result = cli("tsg", "run", str(guide), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    loop = memory(result.stdout)["repeat_warm_the_cache_once_more"]
    assert (loop["iterations"], loop["satisfied"]) == (3, True)
    assert state.read_text() == "hit\n" * 3
    guide.write_text(LOOP_GUIDE.format(state=state, target=9))
    bounded = cli("tsg", "run", str(guide), "--yes")
    assert bounded.returncode == 1
    assert "'the count is below 9' still true after 4 iterations" in bounded.stderr
    assert state.read_text() == "hit\n" * 4


def test_with_local_agents_the_commands_run_on_devices_and_decisions_stay_here(tmp_path: Path) -> None:
    result = cli(
        "tsg", "run", HEALTH, "--set", f"database={tmp_path / 'd.db'}", "--yes", "--json",
        "--local-agents", "1", "--local-label", "site=lab", "--on", "site=lab",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    started = events(result.stdout)[0]
    targets = {task["id"]: (task["tool"], task.get("target")) for task in started["graph"]["tasks"]}
    on_lab = {"labels": {"site": "lab"}}
    assert targets["check_the_load"] == ("shell", on_lab)
    assert targets["check_the_error_rate"] == ("sql", on_lab)
    assert targets["if_the_error_rate_is_above_1"] == ("tsg_judge", None)  # decided here
    # The agent ran them (no local executor could: they target devices) and found the same.
    steps = memory(result.stdout)
    assert steps["check_the_error_rate"]["rows"] == [{"error_rate_pct": 1.15}]
    assert steps["find_the_failing_endpoint"]["rows"][0]["endpoint"] == "/api/orders"


def test_on_without_devices_is_a_usage_error() -> None:
    result = cli("tsg", "run", HEALTH, "--yes", "--on", "site=lab")
    assert result.returncode == 2 and "--broker" in result.stderr


GATED_GUIDE = """# Service down

## Diagnosis

1. Check whether the service answers:

   ```shell
   echo running
   ```

   If the service is not responding, restart it:

   ```shell
   touch {marker}
   ```

2. Note the outcome in the incident.
"""


def test_yes_never_decides_the_diagnosis_that_gates_a_remedy(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    guide = tmp_path / "gated.md"
    guide.write_text(GATED_GUIDE.format(marker=marker))
    result = cli("tsg", "run", str(guide), "--yes", "--json")  # no terminal: nobody can decide
    assert result.returncode == 0, result.stderr
    assert not marker.exists()  # --yes approved the command, but the gate was never decided
    assert "undecided: 'the service is not responding'" in result.stderr
    assert "skipped" in result.stderr
    steps = memory(result.stdout)
    judge = next(v for k, v in steps.items() if k.startswith("if_the_service_is_not"))
    assert (judge["holds"], judge["by"]) == (False, "undecided")
    assert steps["note_the_outcome_in_the_incident"]["performed"] is False  # the flow went on


def test_a_guide_run_is_journaled_keeps_going_and_its_compiled_graph_draws(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    guide = tmp_path / "two.md"
    guide.write_text(
        "# Two checks\n\n## Diagnosis\n\nCheck each of the following:\n\n"
        "- Check the missing table:\n\n  ```sql\n  SELECT x FROM missing_table\n  ```\n\n"
        "- Check the kernel:\n\n  ```shell\n  uname -s\n  ```\n"
    )
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    result = cli(
        "tsg", "run", str(guide), "--set", f"database={db}", "--keep-going", "--journal", str(journal), "--json"
    )  # fmt: skip
    assert result.returncode == 1  # the first check failed…
    steps = memory(result.stdout)
    assert steps["check_the_kernel"]["stdout"].strip()  # …and the independent one still ran
    run_id = result.stderr.split("run ", 1)[1].split(",", 1)[0]
    shown = cli("runs", "show", run_id, "--journal", str(journal), "--json")
    assert shown.returncode == 0, shown.stderr
    assert run_id in shown.stdout and "check_the_kernel" in shown.stdout
    flow = tmp_path / "health.flow.yaml"
    assert cli("tsg", "compile", HEALTH, "-o", str(flow)).returncode == 0
    drawn = cli("graph", str(flow))  # no --tools: the tsg tools are known from the file
    assert drawn.returncode == 0, drawn.stderr
    assert "tsg_judge" in drawn.stdout
