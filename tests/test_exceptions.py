"""Every exported exception survives a process boundary (pickle), message and attributes.

Workers, devices and ``multiprocessing`` users send errors between processes; an
exception with a custom ``__init__`` and no ``__reduce__`` unpickles broken (wrong
arguments, or a problem list split into characters). The classes are found from the
packages' ``__all__``, so a newly exported exception is covered without editing this file.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
from typing import Any

import pytest

from tests.test_public_api import EXPECTED


def _exported_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in sorted(EXPECTED):
        module = importlib.import_module(package)
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, BaseException):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


def _example(cls: type[BaseException]) -> BaseException:
    """An instance built the way the code builds it, with every attribute set.

    Examples are keyed by the class that defines ``__init__``, so a subclass that only
    inherits one (``ToolArgumentError``) is built like its parent.
    """
    from planners.workflow.problems import Problem

    build: Any = cls  # each example passes what its class's own __init__ takes
    examples: dict[str, Any] = {
        "GraphValidationError": lambda: build(
            ["task 'a' depends on unknown task 'b'", "cycle: c -> d -> c"], source="deploy.yaml"
        ),
        "TaskFailed": lambda: build("fetch", "connection refused"),
        "RunNotFound": lambda: build("abc123", "runs.sqlite3"),
        "RemoteTaskError": lambda: build(
            "disk full", device_id="edge-1", remote_type="OSError", retryable=False
        ),
        "GuideError": lambda: build("guide.md", 12, "no steps found", "add a numbered list"),
        "WorkflowFileError": lambda: build([Problem("w.yaml", 3, 1, "fetch", "unknown tool", hint="fix it")]),
        "ToolError": lambda: build("disk full", retryable=False),
    }
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    if owner.__module__ == "builtins":
        return cls("something went wrong")
    make = examples.get(owner.__name__)
    if make is None:
        pytest.fail(f"{owner.__qualname__} has a custom __init__: add an example to _example() in {__file__}")
    return make()  # type: ignore[no-any-return]


def _state(exc: BaseException) -> tuple[type[BaseException], str, tuple[Any, ...], dict[str, Any]]:
    return (type(exc), str(exc), exc.args, dict(vars(exc)))


@pytest.mark.parametrize("cls", _exported_exceptions(), ids=lambda c: c.__qualname__)
def test_exception_survives_pickle(cls: type[BaseException]) -> None:
    original = _example(cls)
    copy = pickle.loads(pickle.dumps(original))
    assert _state(copy) == _state(original)


def test_every_family_is_found() -> None:
    names = {cls.__name__ for cls in _exported_exceptions()}
    assert {"GraphValidationError", "RemoteTaskError", "GuideError", "ToolError", "LLMConfigError"} <= names


def test_graph_validation_error_keeps_its_problems() -> None:
    from orchestrator import GraphValidationError

    problems = [f"problem {i}" for i in range(42)]
    copy = pickle.loads(pickle.dumps(GraphValidationError(problems, source="big.yaml")))
    assert copy.problems == problems
    assert copy.source == "big.yaml"
    assert str(copy).startswith("big.yaml: invalid graph (42 problems):")
