"""The ``slow`` marker, applied by rule so that ``pytest -m "not slow"`` is a fast edit–test loop.

A test is slow when it waits on another process: it lives in ``tests/e2e`` (the real CLI
in subprocesses), it runs a PostgreSQL variant (a parameter ``postgres``), or its body or
one of its fixtures starts a process (``subprocess``, ``asyncio.create_subprocess_*``,
``anyio.open_process``, an MQTT ``LocalBroker``, MCP sessions (``mcp_tools``,
``McpServers``: their servers are processes), or an argv naming ``sys.executable``),
directly or through a function or class of the test suite they call. The rule reads the
source, so new tests are classified by what they do; nobody has to remember to mark them.

The PostgreSQL server (``pg_server.server``) counts only where a test or a fixture calls
it itself: the backend helpers (``new_journal``) start it for the ``postgres`` variant
alone, which the parameter rule already marks, so the SQLite variants stay fast.
CI runs everything (``python -m pytest``).

This file also gives every process the suite starts a working Ctrl-C (see
``_default_sigint``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeGuard

import anyio
import pytest

from orchestrator.devices import LocalBroker


def _default_sigint() -> None:
    """Let Ctrl-C reach the processes the tests start, however pytest itself was started.

    A shell starts a background job (``cmd &`` in a script, ``nohup``) with SIGINT ignored,
    and an ignored signal stays ignored through fork and exec: every CLI the tests start
    would then ignore the SIGINT that the interrupt tests send and hang until their
    timeout. A Python handler is reset to the default on exec, so installing Python's own
    one here gives children the default disposition (and lets pytest be interrupted).
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


_default_sigint()

TESTS = Path(__file__).resolve().parent
SLOW_DIRECTORIES = ("e2e",)
SLOW_PARAMETERS = frozenset({"postgres"})

#: What starts a process.
PROCESS_STARTERS: frozenset[object] = frozenset(
    {
        subprocess.run,
        subprocess.Popen,
        subprocess.call,
        subprocess.check_call,
        subprocess.check_output,
        asyncio.create_subprocess_exec,
        asyncio.create_subprocess_shell,
        anyio.open_process,
        anyio.run_process,
        LocalBroker,
        sys.executable,
    }
)


def _mcp_sessions() -> frozenset[object]:
    try:
        from tools.mcp import McpServers, mcp_tools
    except ImportError:  # the `mcp` extra is not installed
        return frozenset()
    return frozenset({McpServers, mcp_tools})


PROCESS_STARTERS |= _mcp_sessions()


@cache
def _backend_dispatched() -> frozenset[object]:
    """Process starters that count only when a test or fixture calls them itself."""
    try:
        from tests.orchestrator.journal.pg_server import server
    except ImportError:  # the journal tests are not collected in this session
        return frozenset()
    return frozenset({server})


def _referenced(node: ast.AST, namespace: dict[str, Any]) -> Iterator[object]:
    """The objects a function's or class's names and ``module.attribute``s refer to."""
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and child.id in namespace:
            yield namespace[child.id]
        elif isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name):
            base = namespace.get(child.value.id)
            if inspect.ismodule(base):
                yield getattr(base, child.attr, None)


def _in_suite(obj: object) -> TypeGuard[Callable[..., Any] | type]:
    """A function or class of the test suite (its source is read in turn)."""
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__.startswith("tests.")


@cache
def _direct_references(obj: Callable[..., Any] | type) -> tuple[object, ...]:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):  # no source: a builtin, or defined in a string
        return ()
    namespace = vars(sys.modules[obj.__module__])
    return tuple(found for found in _referenced(ast.parse(source), namespace) if found is not obj)


def starts_process(obj: Callable[..., Any] | type, *, top: bool = True, seen: set[int] | None = None) -> bool:
    """Whether calling ``obj`` starts a process, by what its source refers to."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return False
    seen.add(id(obj))
    dispatched = _backend_dispatched()
    for found in _direct_references(inspect.unwrap(obj)):
        try:
            if found in PROCESS_STARTERS or (top and found in dispatched):
                return True
        except TypeError:  # unhashable
            continue
        if _in_suite(found) and found not in dispatched and starts_process(found, top=False, seen=seen):
            return True
    return False


def slow_reason(item: pytest.Item) -> str | None:
    """Why ``item`` is slow, or ``None``."""
    path = Path(str(item.path)).resolve()
    if path.is_relative_to(TESTS) and path.relative_to(TESTS).parts[0] in SLOW_DIRECTORIES:
        return f"in tests/{path.relative_to(TESTS).parts[0]}"
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        values = {value for value in callspec.params.values() if isinstance(value, str)}
        if values & SLOW_PARAMETERS:
            return f"parameter {sorted(values & SLOW_PARAMETERS)[0]!r}"
    function = getattr(item, "function", None)
    if function is not None and starts_process(function):
        return "its body starts a process"
    fixture_info = getattr(item, "_fixtureinfo", None)
    definitions = fixture_info.name2fixturedefs if fixture_info is not None else {}
    for name in getattr(item, "fixturenames", ()):
        for definition in definitions.get(name, ())[-1:]:
            if starts_process(definition.func):
                return f"fixture {name!r} starts a process"
    return None


def _deselects_slow(config: pytest.Config) -> bool:
    """Whether ``-m`` leaves out every ``slow`` test, whatever other markers it carries."""
    expression = config.getoption("markexpr", "")
    if not expression:
        return False
    try:
        from _pytest.mark.expression import Expression  # the parser behind -m
    except ImportError:  # moved in a later pytest: collect everything, deselect as usual
        return False
    compiled = Expression.compile(expression)

    def only_slow(name: str, /, **_: str | int | bool | None) -> bool:
        return name == "slow"

    def every_marker(name: str, /, **_: str | int | bool | None) -> bool:
        return True

    return not compiled.evaluate(only_slow) and not compiled.evaluate(every_marker)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With slow tests left out, their directories are not even imported (seconds saved)."""
    if (
        collection_path.parent == TESTS
        and collection_path.name in SLOW_DIRECTORIES
        and _deselects_slow(config)
    ):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = slow_reason(item)
        if reason is not None:
            item.add_marker(pytest.mark.slow)
            item.user_properties.append(("slow", reason))
