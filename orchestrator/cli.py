"""The ``stepweave`` command line (filled in by the YAML/CLI work)."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    raise SystemExit("stepweave: the command line is not built yet")
