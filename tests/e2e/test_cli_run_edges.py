"""`stepweave run` at its edges: outputs that cannot be computed, outputs that are tool
results, env access, approval without a terminal, conditions made of text; and hostile
input: terminal escapes and markup in outputs, expressions pasted into shell scripts,
YAML that is deep, bombed or binary."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from .test_cli import cli, json_lines, stepweave_command


def write(tmp_path: Path, text: str) -> Path:
    flow = tmp_path / "flow.yaml"
    flow.write_text(text)
    return flow


def test_an_output_of_a_skipped_step_fails_clearly_after_the_summary(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "name: skip\nsteps:\n  - id: maybe\n    tool: shell\n    when: false\n    args: {argv: [echo, hi]}\n"
        "outputs:\n  greeting: ${{ steps.maybe.output.stdout }}\n",
    )
    report = tmp_path / "run.html"
    proc = cli("run", str(flow), "--report", str(report))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "maybe" in proc.stdout  # the summary table was printed
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {flow}: the steps succeeded but an output cannot be computed")
    assert "greeting" in proc.stderr
    assert report.stat().st_size > 10_000


def test_a_tool_result_as_an_output_is_json(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("hello")
    flow = write(
        tmp_path,
        f"name: read\nsteps:\n  - id: read\n    tool: read_file\n    args: {{path: {data}}}\n"
        "outputs:\n  file: ${{ steps.read.output }}\n",
    )
    proc = cli("run", str(flow), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    file_output = json_lines(proc.stdout)[-1]["outputs"]["file"]
    assert isinstance(file_output, dict) and file_output["text"] == "hello"


def test_env_names_are_readable_only_when_allowed(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "name: env\nsteps:\n  - id: show\n    tool: shell\n    args: {argv: [echo, '${{ env.HOME }}']}\n"
        "outputs:\n  home: ${{ steps.show.output.stdout | trim }}\n",
    )
    allowed = cli("run", str(flow), "--env", "HOME", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json_lines(allowed.stdout)[-1]["outputs"]["home"] not in ("", None)
    refused = cli("run", str(flow))
    assert refused.returncode == 1 and "env" in refused.stderr


def test_approval_without_a_terminal_says_to_pass_yes(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "name: gate\nsteps:\n  - id: deploy\n    tool: shell\n    needs_approval: true\n    args: {argv: [echo, go]}\n",
    )
    refused = cli("run", str(flow))
    assert refused.returncode == 1
    assert "step 'deploy' needs approval and there is no terminal to ask: pass --yes" in refused.stderr
    approved = cli("run", str(flow), "--yes")
    assert approved.returncode == 0, approved.stderr


def test_a_condition_of_text_and_placeholders_is_rejected_with_its_line(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        "name: cond\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: [echo, a]}\n"
        "  - id: b\n    tool: shell\n    when: ${{ steps.a.ok }} and ${{ steps.a.ok }}\n    args: {argv: [echo, b]}\n",
    )
    proc = cli("validate", str(flow))
    assert proc.returncode == 1
    assert f"{flow}:" in proc.stderr and "when must be one expression" in proc.stderr


# -- untrusted text in the terminal (security review, finding 8) ----------------------------

HOSTILE = (
    r'printf "[conceal]secret[/conceal] \033]0;title\007 \033[2J bad" >&2; '
    r'printf "[conceal]x[/conceal] \033]0;title\007"; exit 3'
)


def cli_env(*args: str, cwd: Path, color: bool) -> subprocess.CompletedProcess[str]:
    """The CLI as on a colour terminal (Rich's FORCE_COLOR) or as in a pipe."""
    env = {
        "PATH": "/usr/bin:/bin",
        "COLUMNS": "200",
        "HOME": str(cwd),
        "STEPWEAVE_JOURNAL": str(cwd / "j.db"),
    }
    if color:
        env |= {"FORCE_COLOR": "1", "TERM": "xterm-256color"}
    return subprocess.run(
        [*stepweave_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_shown_literally(output: str, markup: str, *, color: bool) -> None:
    assert markup in output  # the brackets are text, not a style that hides what is inside
    assert "\\x1b]0;title\\x07" in output or "\\x1b]0;owned\\x07" in output  # visible escapes
    assert "\x07" not in output and "\x1b]" not in output and "\x1b[2J" not in output
    if not color:
        assert "\x1b" not in output  # no escape byte at all reaches a pipe


@pytest.mark.parametrize("color", [False, True], ids=["pipe", "terminal"])
def test_tool_output_and_errors_are_shown_literally(tmp_path: Path, color: bool) -> None:
    flow = write(
        tmp_path,
        "name: hostile\nsteps:\n  - id: show\n    tool: shell\n"
        f"    args: {{argv: [sh, -c, {json.dumps(HOSTILE)}], check: true}}\n",
    )
    proc = cli_env("run", str(flow), cwd=tmp_path, color=color)
    assert proc.returncode == 1
    # The summary table (stdout) and the one-line reason (stderr) both quote the error.
    assert_shown_literally(proc.stdout, "[conceal]secret[/conceal]", color=color)
    assert_shown_literally(proc.stderr, "[conceal]secret[/conceal]", color=color)
    assert "step 'show' failed" in proc.stderr


@pytest.mark.parametrize("color", [False, True], ids=["pipe", "terminal"])
def test_tsg_guide_steps_show_command_output_literally(tmp_path: Path, color: bool) -> None:
    guide = tmp_path / "markup.md"
    guide.write_text(
        "# Out\n\n## Diagnosis\n\n1. Show status:\n\n   ```shell\n"
        '   printf "[conceal]FAILED: disk corrupted[/conceal]OK \\033]0;owned\\007 \\033[2J"\n'
        "   ```\n"
    )
    proc = cli_env("tsg", "run", str(guide), cwd=tmp_path, color=color)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("guide steps") :]
    assert_shown_literally(table, "[conceal]FAILED: disk corrupted[/conceal]OK", color=color)


# -- expressions pasted into shell scripts (finding 19) -------------------------------------

SHINJ = """\
name: shinj
inputs:
  host:
    type: string
    default: localhost
steps:
  - id: ping
    tool: shell
    args:
      argv: [sh, -c, "echo checking ${{ inputs.host }}"]
  - id: safe
    tool: shell
    args:
      argv: [echo, "${{ inputs.host }}"]
"""


def test_validate_and_run_warn_about_an_expression_in_a_shell_script(tmp_path: Path) -> None:
    flow = write(tmp_path, SHINJ)
    checked = cli("validate", str(flow))
    assert checked.returncode == 0, checked.stderr
    assert "2 steps, valid (1 warning(s))" in checked.stdout
    (warning,) = [line for line in checked.stderr.splitlines() if line.strip()]
    assert warning.startswith(f"{flow}:10:") and "step 'ping': warning: args.argv[2]" in warning
    assert "`sh -c` script" in warning and "set_env" in warning
    strict = cli("validate", str(flow), "--strict")
    assert strict.returncode == 1 and "1 warning(s) (--strict)" in strict.stderr
    ran = cli("run", str(flow), "--set", "host=web-1", "--json")
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("is pasted into a `sh -c` script") == 1  # once, before the run


# -- hostile input files (finding 15) -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (
            "deep.yaml",
            "name: d\nsteps:\n  - id: a\n    tool: shell\n    args:\n      argv: "
            + "[" * 50_000
            + "]" * 50_000,
        ),
        ("maps.yaml", "name: d\nsteps: " + "{a: " * 50_000 + "1" + "}" * 50_000),
        ("nul.yaml", "name: d\nsteps:\n  - id: a\x00\n"),
        (
            "bomb.yaml",
            "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)),
        ),
    ],
)
def test_hostile_yaml_fails_in_one_line_naming_the_file(tmp_path: Path, name: str, content: str) -> None:
    flow = tmp_path / name
    flow.write_text(content)
    # `validate` here; `run` and `graph` load files the same way (load_flow).
    for command in ("validate", "run") if name == "deep.yaml" else ("validate",):
        proc = cli(command, str(flow))
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        problem, summary = proc.stderr.strip().splitlines()
        assert problem.startswith(f"{flow}:") and summary == f"error: {flow}: invalid workflow (1 problem(s))"


def test_a_tools_module_named_tools_py_runs(tmp_path: Path) -> None:
    # The user's file shares its name with stepweave's `tools` package, which it imports.
    (tmp_path / "tools.py").write_text(
        "from tools import tool\n\n\n@tool\ndef greet(name: str) -> str:\n    return f'hello {name}'\n"
    )
    flow = write(
        tmp_path,
        "name: greet\nsteps:\n  - id: hi\n    tool: greet\n    args: {name: ada}\n"
        "outputs:\n  said: ${{ steps.hi.output }}\n",
    )
    proc = cli("run", str(flow), "--tools", "tools.py", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[-1]["outputs"] == {"said": "hello ada"}


def test_the_resume_hint_is_given_only_for_a_run_that_did_not_finish(tmp_path: Path) -> None:
    journal = str(tmp_path / "journal.sqlite3")
    ok = write(tmp_path, "name: ok\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: ['true']}\n")
    done = cli("run", str(ok), "--journal", journal)
    assert done.returncode == 0, done.stderr
    assert "journaled in" in done.stderr and "stepweave resume" not in done.stderr
    slow = write(tmp_path, "name: slow\nsteps:\n  - id: a\n    tool: wait\n    args: {seconds: 30}\n")
    process = subprocess.Popen(
        [*stepweave_command(), "run", str(slow), "--journal", journal],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stderr is not None
    started = process.stderr.readline()  # the run is journaled: interrupt it now
    assert started.startswith("run "), started
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    run_id = started.split()[1].rstrip(",")
    assert process.returncode == 130, stderr
    assert f"continue it with: stepweave resume {run_id}" in stderr


def test_a_number_in_argv_is_passed_as_text_and_a_boolean_fails(tmp_path: Path) -> None:
    # As docs/workflows.md says under "Expressions".
    number = write(
        tmp_path,
        "name: n\ninputs:\n  count: {type: integer, default: 3}\nsteps:\n  - id: a\n    tool: shell\n"
        "    args: {argv: [echo, '${{ inputs.count }}']}\noutputs:\n  said: ${{ steps.a.output.stdout | trim }}\n",
    )
    ran = cli("run", str(number), "--no-journal", "--json")
    assert ran.returncode == 0, ran.stderr
    assert json_lines(ran.stdout)[-1]["outputs"] == {"said": "3"}
    boolean = write(
        tmp_path, "name: b\nsteps:\n  - id: a\n    tool: shell\n    args: {argv: [echo, '${{ 1 > 0 }}']}\n"
    )
    failed = cli("run", str(boolean), "--no-journal")
    assert failed.returncode == 1 and "argv.1: Input should be a valid string" in failed.stderr
