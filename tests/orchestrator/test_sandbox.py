"""The expression sandbox: plain data only, an allowlist of methods, bounded cost.

Built from the security review's findings 1 (a pydantic output's ``parse_raw`` ran pickle
in the orchestrator) and 9 (statements, constant folding and deep nesting hung or crashed
``validate`` and ``run``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from orchestrator import Orchestrator, Task
from orchestrator import sandbox as sandbox_module
from orchestrator.errors import ExpressionError
from orchestrator.expressions import compile_expression, plain_data
from tools import tool
from tools.builtin import ShellResult, shell


class Canary(BaseModel):
    """A tool output type whose every way to run code leaves a mark."""

    value: int = 1

    def touch(self) -> str:
        CALLS.append("touch")
        return "touched"


CALLS: list[str] = []


def pickle_payload(marker: Path) -> str:
    # The review's payload: pickle protocol 0 calling os.system.
    return f"cos\\nsystem\\n(S'touch {marker}'\\ntR."


def test_the_pickle_escape_of_the_review_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "PICKLE_RCE"
    expression = (
        '${{ steps.probe.output.parse_raw("'
        + pickle_payload(marker)
        + "\", proto='pickle', allow_pickle=True) }}"
    )
    # Refused when the graph is defined (what `validate` runs), before any step runs...
    with pytest.raises(ExpressionError, match="'parse_raw' is not a method expressions may call"):
        compile_expression(expression)
    # ...and through a subscript, which no static check sees, refused at run time.
    sneaky = "${{ steps.probe.output['parse_raw'](\"" + pickle_payload(marker) + "\", proto='pickle') }}"
    graph = [
        Task(id="probe", tool="shell", args={"argv": ["echo", "hello"]}),
        Task(id="pwn", tool="shell", args={"argv": ["echo", sneaky]}),
    ]
    result = Orchestrator(tools=[shell]).run_sync(graph)
    assert result.tasks["probe"].status.value == "succeeded"
    assert isinstance(result.tasks["probe"].output, ShellResult)  # the result stays typed
    pwn = result.tasks["pwn"]
    assert pwn.status.value == "failed" and pwn.error is not None
    assert "parse_raw" in pwn.error.message
    assert not marker.exists()


async def test_expressions_see_tool_outputs_as_plain_data() -> None:
    @tool
    def canary() -> Canary:
        return Canary(value=41)

    @tool
    def echo(value: Any) -> Any:
        return value

    graph = [
        Task(id="c", tool="canary"),
        Task(id="plus", tool="echo", args={"value": "${{ steps.c.output.value + 1 }}"}),
        Task(id="dump", tool="echo", args={"value": "${{ steps.c.output }}"}),
        Task(id="method", tool="echo", args={"value": "${{ steps.c.output['touch']() }}"}),
    ]
    result = await Orchestrator(tools=[canary, echo], failure_policy="continue").run(graph)
    assert result.tasks["plus"].output == 42
    assert result.tasks["dump"].output == {"value": 41} and type(result.tasks["dump"].output) is dict
    assert result.tasks["method"].status.value == "failed"
    assert CALLS == []


def test_plain_data_leaves_no_objects() -> None:
    data = plain_data({"m": Canary(), "t": (1, 2), "s": {3}, "b": b"x", "o": object()})
    assert data["m"] == {"value": 1} and data["t"] == [1, 2] and data["s"] == [3] and data["b"] == "x"
    assert isinstance(data["o"], str)
    json.dumps(data)  # nothing but JSON


@pytest.mark.parametrize(
    "source",
    [
        "x${% for i in range(100000) %}${% for j in range(100000) %}${{ '' }}${% endfor %}${% endfor %}",
        "${% set x = 1 %}",
        "${% macro m() %}${{ m() }}${% endmacro %}${{ m() }}",
        "${{ 'ab'|center(1000000000) }}",
        "${{ 'x'|format(1) }}",
        "${{ ''|attr('__class__') }}",
        "${{ '{0.__class__}'.format(1) }}",
        "${{ ''.ljust(1000000000) }}",
        "${{ [].append(1) }}",
        "${{ cycler(1) }}",
        "${{ namespace(a=1) }}",
        "${{ (" * 400 + "1" + ")" * 400 + " }}",
        "${{ " + "[" * 2000 + "]" * 2000 + " }}",
        "${{ " + "not " * 3000 + "1 }}",
    ],
)
def test_statements_unsafe_filters_and_deep_nesting_are_definition_errors(source: str) -> None:
    # CPU time: the bound is on the work, which a loaded machine must not blur.
    started = time.process_time()
    with pytest.raises(ExpressionError):
        compile_expression(source)
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("${{ 9 ** (9 ** 9) }}", "exceeds 4096 bits"),
        ("${{ (2 ** 4000) * (2 ** 4000) }}", "exceeds 4096 bits"),
        ("${{ 'a' * 10 ** 9 }}", "repetition would build"),
        ("${{ [0] * 10 ** 9 }}", "repetition would build"),
        ("${{ '%999999999s' % 1 }}", "width or precision"),
        ("${{ '%*s' % (999999999, 1) }}", "width or precision"),
        (
            "${{ ('a' * 1000000) | replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') }}",
            "replace would build",
        ),
        ("${{ range(10).count }}", "not data"),
    ],
)
def test_growth_is_checked_before_it_happens(source: str, message: str) -> None:
    # Compiling does not compute anything (no constant folding): validate stays instant.
    started = time.process_time()
    expression = compile_expression(source)
    assert time.process_time() - started < 0.5
    with pytest.raises(ExpressionError, match=message):
        expression.evaluate({})
    assert time.process_time() - started < 1.0


def test_an_evaluation_has_a_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every operation checks the clock; with no time left the first one stops it.
    monkeypatch.setattr(sandbox_module, "TIME_LIMIT", -1.0)
    with pytest.raises(ExpressionError, match="took longer than"):
        compile_expression("${{ range(3) | map('string') | join(',') }}").evaluate({})


def test_ordinary_expressions_still_work() -> None:
    scope = {"steps": {"a": {"output": {"items": [3, 1, 2], "stdout": " ok\n"}}}, "inputs": {"n": 2}}
    cases = {
        "${{ steps.a.output['items'] | sort | map('string') | join(',') }}": "1,2,3",
        "${{ steps.a.output.stdout.strip().upper() }}": "OK",
        "${{ steps.a.output.get('missing', 'x') }}": "x",
        "${{ '-' * 3 }}": "---",
        "${{ '%.2f' % 1.5 }}": "1.50",
        "${{ inputs.n ** 10 }}": 1024,
        "${{ steps.a.output.keys() | list }}": ["items", "stdout"],
        "${{ steps.a.output['items'] | select('gt', 1) }}": [3, 2],
        "n=${{ inputs.n }}, items=${{ steps.a.output['items'] }}": "n=2, items=[3, 1, 2]",
    }
    for source, expected in cases.items():
        assert compile_expression(source).evaluate(scope) == expected, source


# -- property: random expressions never run code and never exceed the bounds ----------------

_ROOTS = ["steps.c.output", "steps.d.output", "inputs.x", "item", "''", "[]", "{}", "1", "range(3)", "dict()"]
_ATTRS = [
    "parse_raw", "parse_file", "model_validate_json", "construct", "copy", "touch", "__class__",
    "__mro__", "__subclasses__", "__init__", "__globals__", "__dict__", "mro", "format",
    "format_map", "value", "items", "keys", "get", "upper", "split", "join", "gi_frame", "f_globals",
    "__builtins__", "__import__", "func_globals", "_TemplateReference__context", "update", "pop",
]  # fmt: skip
_TAILS = st.sampled_from(
    [
        *(f".{name}" for name in _ATTRS),
        *(f"['{name}']" for name in _ATTRS),
        "()",
        "('cos\\nsystem\\n(S\\'true\\'\\ntR.', proto='pickle')",
        "|map('upper')",
        "|list",
        "|join",
        "|string",
        "|tojson",
        " * 1000",
        " ** 99",
        " ~ 'x'",
        " + 'x'",
        " % 1",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(root=st.sampled_from(_ROOTS), tails=st.lists(_TAILS, max_size=6))
def test_random_expressions_never_run_code(root: str, tails: list[str]) -> None:
    source = "${{ " + root + "".join(tails) + " }}"
    # The scope holds objects on purpose: even if one reached the sandbox past plain_data,
    # nothing about it may be callable.
    scope = {
        "steps": {"c": {"output": Canary()}, "d": {"output": {"value": "x", "n": 3}}},
        "inputs": {"x": "text"},
        "item": [1, 2],
    }
    started = time.monotonic()
    try:
        value = compile_expression(source).evaluate(scope)
    except ExpressionError:
        pass
    else:
        json.dumps(value)  # only plain data comes out
        assert len(json.dumps(value)) <= sandbox_module.MAX_RESULT_CHARS
    assert time.monotonic() - started < sandbox_module.TIME_LIMIT + 1.0
    assert CALLS == []
