"""The rule in tests/conftest.py that marks tests ``slow`` (``pytest -m "not slow"`` skips them)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _deselects_slow, starts_process
from tests.orchestrator.journal.conftest import new_journal
from tests.orchestrator.journal.pg_server import server


def _runs_a_program() -> None:
    subprocess.run(["true"], check=True)


async def _runs_python() -> None:
    await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


def _through_a_helper() -> None:
    _runs_a_program()


class _Server:
    def start(self) -> None:
        self.process = subprocess.Popen(["sleep", "1"])


def _makes_a_server() -> _Server:
    return _Server()


def _pure() -> int:
    return len(str(_pure))


def _recursive(n: int) -> int:
    return 0 if n == 0 else _recursive(n - 1)


def _calls_the_postgres_server() -> str:
    return server().new_database()


def _calls_the_backend_helper(backend: str, tmp_path: Any) -> object:
    return new_journal(backend, tmp_path)


# Looked up by name in the tests, so that the tests themselves do not refer to the samples
# that start processes (which would mark them slow too).
SAMPLES: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        _runs_a_program,
        _runs_python,
        _through_a_helper,
        _makes_a_server,
        _pure,
        _recursive,
        _calls_the_postgres_server,
        _calls_the_backend_helper,
    )
}


@pytest.mark.parametrize("name", ["_runs_a_program", "_runs_python", "_through_a_helper", "_makes_a_server"])
def test_a_function_that_starts_a_process_directly_or_through_the_suite_is_slow(name: str) -> None:
    assert starts_process(SAMPLES[name])


@pytest.mark.parametrize("name", ["_pure", "_recursive"])
def test_a_function_that_starts_nothing_is_not(name: str) -> None:
    assert not starts_process(SAMPLES[name])


def test_the_postgres_server_counts_only_where_a_test_calls_it_itself() -> None:
    assert starts_process(SAMPLES["_calls_the_postgres_server"])
    # The backend helper starts it for the "postgres" variant only (marked by its parameter).
    assert not starts_process(SAMPLES["_calls_the_backend_helper"])


def test_the_rule_marks_the_suite_s_process_helpers(request: pytest.FixtureRequest) -> None:
    from tests.planners.tsg import conftest as tsg

    assert starts_process(tsg.cli)  # the `stepweave` command in a subprocess
    assert not starts_process(tsg.environment)
    # This test refers to neither and is not slow.
    assert request.node.get_closest_marker("slow") is None


def test_the_fast_loop_is_documented_and_the_marker_registered() -> None:
    root = Path(__file__).resolve().parents[1]
    assert '`python -m pytest -m "not slow"`' in (root / "README.md").read_text()
    markers = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(marker.startswith("slow:") for marker in markers)


class _Config:
    def __init__(self, markexpr: str) -> None:
        self.markexpr = markexpr

    def getoption(self, name: str, default: str = "") -> str:
        assert name == "markexpr"
        return self.markexpr


@pytest.mark.parametrize(
    ("markexpr", "skips_slow_directories"),
    [
        ("not slow", True),
        ("not slow and not live_llm", True),
        ("", False),
        ("slow", False),
        ("not slow or live_llm", False),  # an e2e test marked live_llm would be selected
        ("live_llm", False),
    ],
)
def test_slow_directories_are_not_collected_only_when_m_leaves_every_slow_test_out(
    markexpr: str, skips_slow_directories: bool
) -> None:
    assert _deselects_slow(_Config(markexpr)) is skips_slow_directories  # type: ignore[arg-type]
