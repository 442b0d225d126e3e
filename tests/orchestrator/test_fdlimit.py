"""A large subprocess fan-out under a low descriptor limit waits instead of losing items.

Security review finding 12: 1,500 `sleep` items under `ulimit -n 1024` lost 995 to EMFILE.
The child process below lowers its own RLIMIT_NOFILE, so the limit is real.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from orchestrator.fdlimit import FDS_PER_CALL, RESERVED_FDS

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    from orchestrator import Orchestrator, Task
    from tools.builtin import shell

    items = list(range(N_ITEMS))
    task = Task(id="s", tool="shell", args={"argv": ["sleep", "0.05"]}, for_each="${{ inputs.items }}")
    result = Orchestrator(tools=[shell], failure_policy="continue").run_sync([task], inputs={"items": items})
    statuses = [r.status.value for tid, r in result.tasks.items() if tid.startswith("s[")]
    errors = sorted({r.error.message for r in result.tasks.values() if r.error})[:3]
    print(json.dumps({"ok": statuses.count("succeeded"), "n": len(statuses), "errors": errors}))
    """
)


def run_child(limit: int, items: int) -> dict[str, object]:
    code = CHILD.replace("FD_LIMIT", str(limit)).replace("N_ITEMS", str(items))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_fan_out_beyond_the_descriptor_limit_loses_nothing() -> None:
    limit = 160
    bound = (limit - RESERVED_FDS) // FDS_PER_CALL
    items = bound * 8  # several times what could be open at once
    report = run_child(limit, items)
    assert report == {"ok": items, "n": items, "errors": []}
