"""The guides in docs/ stay true: their workflows are valid (or fail exactly as shown),
the tutorial of docs/workflows.md builds examples/readiness.yaml, that example runs as
the guide says, and every command the guide shows runs.

How the guide marks its blocks (also written in a comment at its top):

- a ```yaml block with a top-level ``name:`` is a valid workflow, unless the HTML comment
  ``<!-- invalid: COMMAND -->`` precedes it: then COMMAND, run on the block saved as
  ``broken.yaml``, exits 1 (or ``; exits N``) and the ```text block after it shows the
  last lines of its stderr;
- every command in a ```bash block exits 0 unless its line ends in ``# exits N``; a
  ```text block right after a bash block is the end of the last command's stderr, a
  ```mermaid block its stdout;
- a ```json block after ``<!-- outputs -->`` is what the yaml block above it outputs;
- a yaml block whose first line is ``# file: NAME`` is written to NAME; a yaml block
  without ``name:`` is a fragment added to that file (steps appended, mappings merged),
  and the file must end up equal to examples/readiness.yaml, which the guide shows in full.

The stepweave processes (one per command, about a second each) run a few at a time in a
module fixture; the tests then check what each of them did.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from planners import WorkflowFileError, parse_workflow
from tests.e2e.test_cli import EXAMPLE_TOOLS, cli, json_lines
from tools.builtin import builtin_registry
from tools.loading import load_tools

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "workflows.md"
EXAMPLE = "examples/readiness.yaml"

_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<text>.*?)^```$", re.M | re.S)
_NOTE = re.compile(r"<!--\s*(?P<note>[^>]*?)\s*-->\s*\Z")
_EXITS = re.compile(r"(?:#|;)\s*exits (\d+)\s*$")
_SHOWN_FILE = re.compile(r"stepweave run (examples/\S+\.yaml)")
_FILE_HEADER = re.compile(r"\A# file: (\S+)\n")

Proc = subprocess.CompletedProcess[str]


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    text: str
    note: str | None  # the HTML comment right before the block, if any

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"

    def data(self) -> Any:
        return yaml.safe_load(self.text) if self.lang == "yaml" else None

    @property
    def is_workflow(self) -> bool:
        data = self.data()
        return isinstance(data, dict) and "name" in data

    @property
    def command(self) -> str:
        """The command of an ``invalid: COMMAND`` note."""
        assert self.note is not None
        return self.note.removeprefix("invalid:").split(";")[0].strip()


def read_blocks(doc: Path) -> list[Block]:
    source = doc.read_text()
    found = []
    for match in _FENCE.finditer(source):
        note = _NOTE.search(source[: match.start()])
        line = source.count("\n", 0, match.start()) + 1
        text = match.group("text")
        found.append(Block(doc, line, match.group("lang"), text, note.group("note") if note else None))
    return found


def following(blocks: list[Block], block: Block, lang: str) -> Block | None:
    """The block right after ``block`` if it is a ``lang`` block."""
    index = blocks.index(block)
    after = blocks[index + 1] if index + 1 < len(blocks) else None
    return after if after is not None and after.lang == lang else None


def expected_exit(text: str) -> int:
    marked = _EXITS.search(text)
    return int(marked.group(1)) if marked else 0


def commands(block: Block) -> list[str]:
    lines = block.text.replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


DOC_BLOCKS = [block for doc in sorted((ROOT / "docs").glob("*.md")) for block in read_blocks(doc)]
GUIDE_BLOCKS = [block for block in DOC_BLOCKS if block.doc == GUIDE]
VALID = [b for b in DOC_BLOCKS if b.lang == "yaml" and b.note is None and b.is_workflow]
INVALID = [b for b in DOC_BLOCKS if b.lang == "yaml" and (b.note or "").startswith("invalid")]
OUTPUTS = [b for b in GUIDE_BLOCKS if b.lang == "json" and b.note == "outputs"]
BASH = [b for b in GUIDE_BLOCKS if b.lang == "bash"]


# -- the reader's files: the tutorial builds the example ------------------------------------


def merge(into: dict[str, Any], fragment: Any) -> None:
    """Add a tutorial fragment to a workflow: steps are appended, mappings merged."""
    if isinstance(fragment, list):
        into["steps"].extend(fragment)
        return
    assert isinstance(fragment, dict), fragment
    for key, value in fragment.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        else:
            into[key] = value


def tutorial_states() -> tuple[dict[Block, dict[str, Any]], dict[str, Any] | None]:
    """The reader's files before each guide block, and the file when the example is shown."""
    files: dict[str, Any] = {}
    current: str | None = None
    before: dict[Block, dict[str, Any]] = {}
    final: dict[str, Any] | None = None
    for block in GUIDE_BLOCKS:
        before[block] = copy.deepcopy(files)
        if block.lang != "yaml" or block.note is not None:
            continue
        header = _FILE_HEADER.match(block.text)
        if header:
            current = header.group(1)
            files[current] = block.data()
        elif _SHOWN_FILE.search(block.text) and current is not None:
            final = copy.deepcopy(files[current])
            current = None  # later fragments belong to no file
        elif not block.is_workflow:
            assert current is not None, f"{block.id}: a fragment outside the tutorial"
            merge(files[current], block.data())
    return before, final


STATES, FINAL = tutorial_states()


# -- running stepweave ----------------------------------------------------------------------


def shell_env(home: Path) -> dict[str, str]:
    """The reader's environment: stepweave on the PATH, nothing of ours, a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STEPWEAVE_", "XDG_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", HOME=str(home), COLUMNS="200")
    return env


def run_in(workdir: Path, command: str) -> Proc:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=workdir, env=shell_env(workdir), stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def workdir_with_examples(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "examples", path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    return path


def run_example(workdir: Path, programs: list[str]) -> Proc:
    """The tutorial's example through the real CLI, with inputs that make it deterministic."""
    return cli(
        "run", EXAMPLE, "--tools", EXAMPLE_TOOLS, "--json",
        "--set", f"programs={json.dumps(programs)}", "--set", "min_free_mb=0",
        "--set", f"db={workdir / 'verdicts.db'}", "--set", "report=report.txt",
        cwd=workdir,
    )  # fmt: skip


def run_block(workdir: Path, block: Block) -> list[tuple[str, Proc]]:
    """A bash block's commands in order, in a copy of examples/ holding the reader's files."""
    for name, data in STATES[block].items():
        (workdir / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return [(command, run_in(workdir, command)) for command in commands(block)]


def run_broken(workdir: Path, block: Block) -> Proc:
    (workdir / "broken.yaml").write_text(block.text)
    return run_in(workdir, block.command)


def run_outputs(workdir: Path, block: Block) -> Proc:
    flow = GUIDE_BLOCKS[GUIDE_BLOCKS.index(block) - 1]
    assert flow.lang == "yaml" and flow.is_workflow, f"{block.id}: outputs follow a workflow"
    (workdir / "flow.yaml").write_text(flow.text)
    return cli("run", "flow.yaml", "--json", cwd=workdir)


READY = ["sh", "awk", "uname"]
NOT_READY = ["no-such-program-z", "sh", "no-such-program-a", "awk", "uname"]
#: Invalid blocks that need a run to fail; the ones `validate` rejects are checked in-process.
RUN_BROKEN = [b for b in INVALID if not b.command.startswith("stepweave validate")]


@dataclass
class Runs:
    workdirs: dict[str, Path]
    results: dict[str, Any]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every stepweave process these tests need, run a few at a time."""
    jobs: dict[str, Callable[[Path], Any]] = {
        "ready": partial(run_example, programs=READY),
        "not-ready": partial(run_example, programs=NOT_READY),
    }
    for block in BASH:
        jobs[block.id] = partial(run_block, block=block)
    for block in RUN_BROKEN:
        jobs[block.id] = partial(run_broken, block=block)
    for block in OUTPUTS:
        jobs[block.id] = partial(run_outputs, block=block)
    base = tmp_path_factory.mktemp("docs")
    workdirs = {key: workdir_with_examples(base / re.sub(r"\W", "_", key)) for key in jobs}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(job, workdirs[key]) for key, job in jobs.items()}
        yield Runs(workdirs, {key: future.result() for key, future in futures.items()})


def assert_shows_the_end_of(shown: Block, stream: str, what: str) -> None:
    expected = shown.text.rstrip("\n").splitlines()
    actual = stream.rstrip("\n").splitlines()
    assert expected, f"{shown.id}: empty block"
    assert actual[-len(expected) :] == expected, f"{shown.id} is not the end of {what}:\n{stream}"


# -- (a) every workflow in the docs is valid, or fails exactly as shown --------------------


def test_the_docs_have_workflows_of_every_kind() -> None:
    assert len(VALID) >= 5 and len(INVALID) >= 10 and len(OUTPUTS) >= 2 and len(BASH) >= 8


@pytest.mark.parametrize("block", VALID, ids=lambda b: b.id)
def test_doc_workflow_is_valid(block: Block) -> None:
    workflow = parse_workflow(block.text, source=block.id)
    registry = load_tools([str(ROOT / EXAMPLE_TOOLS)], into=builtin_registry())
    assert workflow.problems(registry) == []


@pytest.mark.parametrize("block", INVALID, ids=lambda b: b.id)
def test_invalid_doc_workflow_fails_as_shown(
    block: Block, runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = block.command
    assert command.startswith("stepweave ") and "broken.yaml" in command, block.note
    shown = following(DOC_BLOCKS, block, "text")
    assert shown is not None, f"{block.id}: an invalid workflow is followed by its error"
    if block in RUN_BROKEN:
        proc: Proc = runs.results[block.id]
        code, stderr = proc.returncode, proc.stderr
    else:  # `stepweave validate`, in this process: no run, nothing to isolate
        (tmp_path / "broken.yaml").write_text(block.text)
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(app, command.split()[1:])
        code, stderr = result.exit_code, result.stderr
        try:  # and the Python API finds the same problems
            problems = parse_workflow(block.text, source="broken.yaml").problems(builtin_registry())
        except WorkflowFileError as exc:
            problems = exc.problems
        assert [str(p) for p in problems] == shown.text.splitlines()[:-1]
    assert code == (expected_exit(block.note or "") or 1), stderr
    assert_shows_the_end_of(shown, stderr, f"the stderr of `{command}`")


# -- (b) the tutorial builds the example it shows -----------------------------------------


@pytest.mark.parametrize(
    "block", [b for b in DOC_BLOCKS if b.lang == "yaml" and _SHOWN_FILE.search(b.text)], ids=lambda b: b.id
)
def test_doc_yaml_is_the_example_file_it_names(block: Block) -> None:
    shown = _SHOWN_FILE.search(block.text)
    assert shown
    assert (ROOT / shown.group(1)).read_text() == block.text


def test_the_tutorial_builds_the_finished_example() -> None:
    assert any(_SHOWN_FILE.search(b.text) and EXAMPLE in b.text for b in GUIDE_BLOCKS)
    example = yaml.safe_load((ROOT / EXAMPLE).read_text())
    assert example == FINAL
    assert len(example["steps"]) == 10
    first = next(b for b in GUIDE_BLOCKS if _FILE_HEADER.match(b.text))
    assert len(first.data()["steps"]) < len(example["steps"]), "the tutorial starts small"


# -- (c) the example runs as the guide says -----------------------------------------------


def example_run(runs: Runs, key: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """Outputs, events and step statuses of one run of the example."""
    proc: Proc = runs.results[key]
    assert proc.returncode == 0, proc.stderr
    events = json_lines(proc.stdout)
    assert events[-1]["event"] == "workflow_outputs"
    ended = next(e for e in events if e["event"] == "run_ended")
    assert ended["result"]["status"] == "succeeded"
    statuses = {tid: task["status"] for tid, task in ended["result"]["tasks"].items()}
    return events[-1]["outputs"], events, statuses


def test_example_runs_probes_in_parallel_retries_and_takes_the_ready_branch(runs: Runs) -> None:
    outputs, events, status = example_run(runs, "ready")
    # The six steps without dependencies all started before any of them ended.
    roots = ["disk", "memory", "kernel", "programs", "queue", "init_db"]
    starts = {e["task_id"]: e["at"] for e in events if e["event"] == "task_started" and e["attempt"] == 1}
    ends = {e["task_id"]: e["at"] for e in events if e["event"] == "task_ended"}
    assert max(starts[r] for r in roots) < min(ends[r] for r in roots)
    # The queue refused twice and answered the third attempt.
    retries = [e for e in events if e["event"] == "task_retrying"]
    assert [(e["task_id"], e["attempt"]) for e in retries] == [("queue", 1), ("queue", 2)]
    assert outputs["queue_attempts"] == 3
    # Everything was found, so the ready branch ran and the other one was skipped.
    assert (status["go"], status["no_go"], status["verdict"]) == ("succeeded", "skipped", "succeeded")
    assert outputs["ready"] is True and "queue answered on attempt 3" in outputs["detail"]
    assert [line.split(": ")[0] for line in outputs["programs"]] == READY
    assert outputs["free_mb"] > 0 and outputs["memory_mb"] > 0 and outputs["kernel"]
    report = runs.workdirs["ready"] / "report.txt"
    assert outputs["report"] == str(report)
    assert report.read_text().startswith("READY: ")


def test_example_fans_out_in_order_and_takes_the_not_ready_branch(runs: Runs) -> None:
    outputs, events, status = example_run(runs, "not-ready")
    # One task per program; the results follow the input list, not the finishing order.
    added = [e["task"]["id"] for e in events if e["event"] == "task_added"]
    assert added == [f"programs[{i}]" for i in range(len(NOT_READY))]
    assert [line.split(": ")[0] for line in outputs["programs"]] == NOT_READY
    assert outputs["programs"][0] == "no-such-program-z: not found"
    assert outputs["programs"][1].startswith("sh: /")
    assert (status["go"], status["no_go"], status["verdict"]) == ("skipped", "succeeded", "succeeded")
    assert outputs["ready"] is False
    assert outputs["detail"].endswith("no-such-program-z: not found, no-such-program-a: not found")
    assert (runs.workdirs["not-ready"] / "report.txt").read_text().startswith("NOT READY: ")


# -- (d) the guide's commands run ---------------------------------------------------------


@pytest.mark.parametrize("block", BASH, ids=lambda b: b.id)
def test_guide_commands_run(block: Block, runs: Runs) -> None:
    ran: list[tuple[str, Proc]] = runs.results[block.id]
    assert ran and all(command.startswith("stepweave ") for command, _ in ran), block.text
    for command, proc in ran:
        assert proc.returncode == expected_exit(command), f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr}"
        report = re.search(r"--report (\S+)", command)
        if report:
            assert (runs.workdirs[block.id] / report.group(1)).stat().st_size > 10_000
    last_command, last = ran[-1]
    stderr_shown = following(GUIDE_BLOCKS, block, "text")
    if stderr_shown is not None:
        assert expected_exit(last_command) != 0, f"{block.id}: only a failing command's stderr is shown"
        assert_shows_the_end_of(stderr_shown, last.stderr, f"the stderr of `{last_command}`")
    graph_shown = following(GUIDE_BLOCKS, block, "mermaid")
    if graph_shown is not None:
        assert last.stdout.strip() == graph_shown.text.strip()


# -- the outputs the reference shows ------------------------------------------------------


@pytest.mark.parametrize("block", OUTPUTS, ids=lambda b: b.id)
def test_reference_shows_real_outputs(block: Block, runs: Runs) -> None:
    proc: Proc = runs.results[block.id]
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[-1]["outputs"] == json.loads(block.text)
