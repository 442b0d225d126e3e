"""`stepweave run` at its edges: outputs that cannot be computed, outputs that are tool
results, env access, approval without a terminal, conditions made of text."""

from __future__ import annotations

from pathlib import Path

from .test_cli import cli, json_lines


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
