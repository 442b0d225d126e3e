"""The CLI pauses the garbage collector while it starts, and a command's own code always
runs with it collecting again (:mod:`orchestrator.cli.startup`).

Each case runs in a child interpreter: ``gc.freeze`` in the pytest process would keep
every object of the session alive.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FLOW = """\
name: small
steps:
  - id: hello
    tool: shell
    args: {argv: [echo, hello]}
"""

#: Runs ``main()`` with the given argv; the validate command's body records whether the
#: collector ran, then the probe prints what it saw and the state after ``main``.
PROBE = textwrap.dedent(
    """
    import gc, json, sys
    {before}
    seen = {{}}
    import orchestrator.cli.workflows as workflows
    original = workflows._load_with_fleet
    def spy(*args, **kwargs):
        seen["in_command"] = gc.isenabled()
        return original(*args, **kwargs)
    workflows._load_with_fleet = spy
    from orchestrator.cli import main
    sys.argv = ["stepweave", *{argv!r}]
    try:
        main()
    except SystemExit as exc:
        seen["code"] = exc.code
    seen["after"] = gc.isenabled()
    seen["frozen"] = gc.get_freeze_count()
    print(json.dumps(seen))
    """
)


def _probe(argv: list[str], before: str = "") -> dict[str, object]:
    code = PROBE.format(argv=argv, before=before)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_command_runs_collected_and_start_up_objects_are_frozen(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    seen = _probe(["validate", str(flow)])
    assert seen["code"] in (0, None)
    assert seen["in_command"] is True  # the command's own code: collecting again
    assert seen["after"] is True
    # What start-up built is in the permanent generation (never traversed again).
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_an_error_before_any_command_still_resumes_collection() -> None:
    seen = _probe(["validate", "--no-such-option"])
    assert seen["code"] == 2
    assert "in_command" not in seen  # usage error: no command code ran
    assert seen["after"] is True


def test_a_caller_that_turned_collection_off_keeps_it_off(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW, encoding="utf-8")
    seen = _probe(["validate", str(flow)], before="gc.disable()")
    assert seen["in_command"] is False
    assert seen["after"] is False
    assert seen["frozen"] == 0  # nothing frozen behind the caller's back
