"""The e2e tests run the real CLI, and ``stepweave run`` journals runs by default: keep
those journals in a temporary directory, never in the repository or the real home.

Session-wide (not per test) so that module- and session-scoped fixtures that already run
the CLI see it too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _journal_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    data = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        # XDG_DATA_HOME reaches subprocesses whose environment drops STEPWEAVE_* variables.
        patch.setenv("XDG_DATA_HOME", str(data))
        patch.setenv("STEPWEAVE_JOURNAL", str(data / "stepweave" / "journal.sqlite3"))
        yield
