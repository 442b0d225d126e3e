"""No tracked file names where this checkout lives: a clone anywhere else must get
commands and paths that work (use paths relative to the repository, found at run time)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


def test_no_tracked_file_names_an_absolute_checkout_path() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30)
    # This checkout's own path, and the folder it sits in (where ../shared lives).
    needles = [f"{ROOT}/".encode(), f"{ROOT.parent}/".encode()]
    offenders = []
    for name in filter(None, listed.stdout.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        data = path.read_bytes()
        offenders += [f"{name}:{_line_of(data, needle)}" for needle in needles if needle in data]
    assert not offenders, f"absolute checkout paths in tracked files: {offenders}"
