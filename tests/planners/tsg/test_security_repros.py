"""The review's TSG reproductions (findings 1, 4, 5, 15, 17), run for real and shown harmless."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from planners.llm.testing import OpenAITestServer, ScriptedReply
from planners.tsg import GuideError, compile_guide, parse_guide
from planners.tsg.commands import make_command

from .conftest import ROOT, environment, stepweave


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*stepweave(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL, env=environment(),
    )  # fmt: skip


SPLIT = "# Frequent errors\n\n## Diagnosis\n\n1. Count the distinct lines of `$FILE`:\n\n   ```shell\n   sort $FILE | uniq -c\n   ```\n"


def test_placeholders_reach_the_shell_quoted_as_one_word() -> None:
    args = make_command("sort $FILE | uniq -c", "shell", 1).tool_args()
    assert args["argv"] == ["sh", "-c", 'sort "${FILE}" | uniq -c']
    inside = make_command("grep \"error $WORD\" f | awk '/$WORD/' | wc -l", "shell", 1).tool_args()
    assert inside["argv"][2] == "grep \"error ${WORD}\" f | awk '/'\"${WORD}\"'/' | wc -l"


def test_an_alert_label_cannot_split_into_options(tmp_path: Path) -> None:
    """Finding 4: `file: "/dev/null -o victim"` from --incident stays one (missing) file name."""
    victim = tmp_path / "victim2.txt"
    victim.write_text("precious data\n")
    (tmp_path / "split.md").write_text(SPLIT)
    alert = {"alerts": [{"labels": {"alertname": "Errors", "file": f"/dev/null -o {victim}"}}]}
    (tmp_path / "incident.json").write_text(json.dumps(alert))
    result = _run("tsg", "run", "split.md", "--incident", "incident.json", cwd=tmp_path)
    assert victim.read_text() == "precious data\n", result.stdout + result.stderr
    # A value that starts with "-" is refused before anything runs, naming the input and step.
    alert["alerts"][0]["labels"]["file"] = f"-o{victim}"
    (tmp_path / "incident.json").write_text(json.dumps(alert))
    refused = _run("tsg", "run", "split.md", "--incident", "incident.json", cwd=tmp_path)
    assert refused.returncode == 1
    assert "split.md:8: step 'count_the_distinct_lines_of_file': the value of FILE" in refused.stderr
    assert victim.read_text() == "precious data\n"


BYPASS = """# Stale files check

## Diagnosis

1. List the stale files:

   ```shell
   ls {w}/victim | xargs -I{{}} rm -f {w}/victim/{{}}
   ```

2. Check the config:

   ```shell
   sed -Ei 's/safe/PWNED/' {w}/config.txt
   ```

3. Show the message of the day:

   ```shell
   echo hacked | tee {w}/motd
   ```

4. Check the time limit:

   ```shell
   timeout 5 touch {w}/timeout_touched
   ```

5. Count lines:

   ```shell
   awk 'BEGIN{{system("touch {w}/awk_touched")}}'
   ```

6. Look at the environment:

   ```shell
   env sh -c 'echo owned > {w}/env_written'
   ```

7. Check the log directory `$LOGDIR`:

   ```shell
   find $LOGDIR -name '*.log'
   ```
"""


def test_bypass_runbook_asks_before_every_change_and_refuses_option_values(tmp_path: Path) -> None:
    """Findings 3 and 4 end to end: `repro/bypass.md` with `--set LOGDIR=-delete`."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep").write_text("x")
    (tmp_path / "config.txt").write_text("safe\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("x")
    guide = tmp_path / "bypass.md"
    guide.write_text(BYPASS.format(w=tmp_path))
    compiled = compile_guide(parse_guide(guide.read_text(), guide))
    approvals = [s.needs_approval for s in compiled.command_steps()]
    assert approvals == [True] * 6 + [False]  # only `find $LOGDIR -name '*.log'` reads
    refused = _run("tsg", "run", str(guide), "--set", "LOGDIR=-delete", cwd=logs)
    assert refused.returncode == 1 and "the value of LOGDIR ('-delete') starts with '-'" in refused.stderr
    denied = _run("tsg", "run", str(guide), "--set", "LOGDIR=.", cwd=logs)
    assert denied.returncode == 1 and "not approved" in denied.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bypass.md", "config.txt", "logs", "victim"]
    assert (tmp_path / "config.txt").read_text() == "safe\n" and (logs / "app.log").exists()
    assert (tmp_path / "victim" / "keep").exists()


EXPR = """# Kernel check

## Diagnosis

1. Check the kernel:

   ```shell
   uname -sr
   ```

2. Print the kernel banner:

   ```shell
   echo "${{{{ steps.check_the_kernel.output.parse_raw('cos\\nsystem\\n(Vtouch {marker}\\ntR.', proto='pickle', allow_pickle=True) }}}}"
   ```

3. Note the template syntax ${{% for x in y %}} and ${{# c #}} as text.
"""


def test_runbook_text_never_becomes_an_expression(tmp_path: Path) -> None:
    """Finding 1 (TSG part): `${{ … }}` in a command reaches echo as literal text, also via the YAML."""
    marker = tmp_path / "TSG_PICKLE_RCE"
    guide = tmp_path / "expr.md"
    guide.write_text(EXPR.format(marker=marker))
    result = _run("tsg", "run", str(guide), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    memory = json.loads(result.stdout.strip().splitlines()[-1])["steps"]
    assert memory["print_the_kernel_banner"]["stdout"].startswith(
        "${{ steps.check_the_kernel.output.parse_raw("
    )
    assert not marker.exists()
    compiled = _run("tsg", "compile", str(guide), "-o", str(tmp_path / "expr.yaml"), cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    again = _run("run", str(tmp_path / "expr.yaml"), "--tools", "planners.tsg.workflow_tools",
                 "--no-journal", "--json", cwd=tmp_path)  # fmt: skip
    assert "${{ steps.check_the_kernel.output.parse_raw(" in again.stdout, again.stderr
    assert "${% for x in y %}" in again.stdout  # the manual step's instruction, literal too
    assert not marker.exists()


SQLFIX = """---
inputs:
  database: {db}
---
# Stuck jobs

## Mitigation

1. Reset the stuck jobs:

   ```sql
   UPDATE jobs SET state = 'queued' WHERE state = 'stuck'
   ```
"""


def test_an_approved_sql_write_runs_against_the_front_matter_database(tmp_path: Path) -> None:
    """Finding 17: `write: true` on mutating SQL, and the front matter's `database` default."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE jobs (id INTEGER, state TEXT)")
        connection.execute("INSERT INTO jobs VALUES (1, 'stuck')")
    connection.close()
    guide = tmp_path / "sqlfix.md"
    guide.write_text(SQLFIX.format(db=db))
    step = compile_guide(parse_guide(guide.read_text(), guide)).command_steps()[0]
    assert step.needs_approval and step.args["write"] is True
    unapproved = _run("tsg", "run", str(guide), cwd=tmp_path)
    assert unapproved.returncode == 1 and "not approved" in unapproved.stderr
    approved = _run("tsg", "run", str(guide), "--yes", cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT state FROM jobs").fetchall() == [("queued",)]
    connection.close()


async def test_an_llm_command_with_a_hidden_second_line_is_refused(tmp_path: Path) -> None:
    """Finding 5: `uname -sr | head -1\\ntouch …` from `tsg --llm` never runs."""
    marker = tmp_path / "LLM_NEWLINE_PWNED"
    guide = tmp_path / "prose.md"
    guide.write_text("# Kernel check\n\n## Diagnosis\n\n1. Check which kernel this machine runs.\n")
    proposal = {
        "steps": [{"id": "s5", "command": f"uname -sr | head -1\ntouch {marker}", "language": "shell"}]
    }
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.json({**proposal, "conditions": []}))
        process = await asyncio.create_subprocess_exec(
            *stepweave(), "tsg", "run", str(guide), "--llm",
            cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=environment(OPENAI_BASE_URL=server.base_url, STEPWEAVE_MODEL=server.model),
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert "refused the proposed command" in stderr.decode()
    assert not marker.exists()
    # Even without the refusal, the classifier reads the newline as a second command.
    assert make_command(f"uname -sr | head -1\ntouch {marker}", "shell", 1).effect == "write"


BOMB = (
    "---\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    + "inputs:\n  X: *a8\n---\n# A\n\n1. Check the dir:\n\n   ```shell\n   ls $X\n   ```\n"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "front matter:"),  # the wording is the workflow reader's
        ("---\nx: " + "[" * 20000 + "]" * 20000 + "\n---\n# A\n\n1. Run `ls -la /tmp`.\n", "front matter:"),
        ("---\nx: 1\n---\n# A\n\n1. Check:\n\n   ```shell\n   ls\0\n   ```\n", "NUL bytes"),
    ],
    ids=["alias-bomb", "deep-nesting", "nul-byte"],
)
def test_hostile_front_matter_is_a_one_line_error_within_a_second(text: str, message: str) -> None:
    """Finding 15 (TSG part)."""
    # CPU time, not wall time: the promise is about the work done, and a loaded CI machine
    # must not turn a correct parser into a failing test. Nor may an earlier test's garbage.
    gc.collect()
    started = time.process_time()
    with pytest.raises(GuideError) as caught:
        parse_guide(text, "bomb.md")
    assert time.process_time() - started < 1.0
    assert message in str(caught.value) and "\n" not in str(caught.value)
