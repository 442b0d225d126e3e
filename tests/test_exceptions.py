"""Every exported exception survives a process boundary (pickle), message and attributes;
error kinds read and write as the plain strings journals and JSON hold.

Workers, devices and ``multiprocessing`` users send errors between processes; an
exception with a custom ``__init__`` and no ``__reduce__`` unpickles broken (wrong
arguments, or a problem list split into characters). The classes are found from the
packages' ``__all__``, so a newly exported exception is covered without editing this file.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pickle
from typing import Any

import pytest

from orchestrator import ErrorKind, TaskError
from orchestrator.journal.codec import decode_error, dumps
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
    make = examples.get(owner.__name__)
    if make is not None:
        return make()  # type: ignore[no-any-return]
    try:
        return cls("something went wrong")
    except TypeError:
        pytest.fail(f"{owner.__qualname__} has a custom __init__: add an example to _example() in {__file__}")


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


@pytest.mark.parametrize("kind", list(ErrorKind), ids=str)
def test_error_kinds_read_and_write_as_their_strings(kind: ErrorKind) -> None:
    # A journal or JSON report written before the enum holds the plain string: it must
    # still compare equal, and what is written now must be that same plain string.
    written = dumps(TaskError(kind, "why", False).to_dict())
    assert json.loads(written)["type"] == kind.value
    read = decode_error(json.loads(written))
    assert read == TaskError(kind.value, "why", False) and read is not None and read.type == kind
    assert f"{kind}" == kind.value and str(TaskError(kind, "why", False)) == f"{kind.value}: why"


def test_a_plandag_error_keeps_its_problems_across_pickle() -> None:
    # Not exported (the TSG commands raise it), but it may cross a process boundary like any error.
    from planners.tsg.plan import PlanError

    error = PlanError(["a node needs a name", "an edge ends nowhere"])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is PlanError
    assert copy.problems == error.problems and str(copy) == str(error)
