"""Shared fixtures of the journal tests: a fresh journal file per test, never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.journal import Journal


@pytest.fixture(autouse=True)
def _isolated_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Anything that falls back to the default journal lands in this test's directory.
    monkeypatch.setenv("STEPWEAVE_JOURNAL", str(tmp_path / "default-journal.sqlite3"))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite3")
