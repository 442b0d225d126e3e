"""The operator at a real terminal (a pseudo-terminal): a prose condition is asked, and answered."""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, stepweave

pty = pytest.importorskip("pty")

GUIDE = """# Kernel check

1. Look at the kernel:

   ```shell
   uname -s
   ```

   If it looks healthy, go to step 3.

2. Not healthy:

   ```shell
   echo sick
   ```

   Stop here.

3. Healthy:

   ```shell
   echo fine
   ```
"""


def run_in_terminal(argv: list[str], answer: bytes, prompt: bytes) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal, type ``answer`` when ``prompt`` appears; return status and output."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command, its stdin/stdout a terminal
        os.chdir(ROOT)
        os.execv(argv[0], argv)
    output = b""
    answered = False
    deadline = time.monotonic() + 45
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal: it has ended
                break
            if not chunk:
                break
            output += chunk
            if not answered and prompt in output:
                os.write(fd, answer)
                answered = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_the_operator_decides_a_prose_condition(tmp_path: Path) -> None:
    guide = tmp_path / "kernel.md"
    guide.write_text(GUIDE)
    code, output = run_in_terminal([*stepweave(), "tsg", "run", str(guide)], b"y\n", b"Does this hold")
    assert code == 0, output
    assert "it looks healthy?" in output  # the question names the condition …
    assert "Linux" in output  # … and shows the output it is about
    assert "yes (operator: answered at the" in output  # the summary says who decided
    assert "sick" not in output.split("Does this hold")[-1]
