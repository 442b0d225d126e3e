"""docs/telemetry.md stays true: its script runs its workflow and prints what the doc shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "telemetry.md"
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<text>.*?)^```$", re.M | re.S)


def _blocks() -> list[tuple[str, str]]:
    return [(m["lang"], m["text"]) for m in _FENCE.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_cli_example_prints_what_the_doc_shows(tmp_path: Path) -> None:
    blocks = _blocks()
    workflow = next(
        text for lang, text in blocks if lang == "yaml" and text.startswith("# file: traced.yaml")
    )
    index, script = next(
        (i, text) for i, (lang, text) in enumerate(blocks) if lang == "python" and "OTLPReceiver" in text
    )
    lang, shown = blocks[index + 1]
    assert lang == "text", "the script's output follows it"
    (tmp_path / "traced.yaml").write_text(workflow)
    (tmp_path / "example.py").write_text(script)
    # The reader's environment: stepweave on the PATH, no telemetry or stepweave settings of ours.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STEPWEAVE_", "OPENAI_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown
