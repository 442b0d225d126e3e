"""The ${{ … }} language: native values, templates, AST-derived references, the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ExpressionError
from orchestrator.expressions import compile_expression, compile_value

SCOPE: dict[str, Any] = {
    "steps": {
        "http": {"output": {"status": 503, "items": [1, 2, 3]}, "status": "succeeded", "error": None},
        "check-disk": {"output": "ok", "status": "succeeded", "error": None},
    },
    "inputs": {"host": "example.org", "limit": 2},
}


def test_single_expression_yields_native_value() -> None:
    expr = compile_expression("${{ steps.http.output.items }}")
    assert expr.native and expr.refs == {"http"}
    assert expr.evaluate(SCOPE) == [1, 2, 3]
    assert compile_expression(" ${{ steps.http.output.status >= 500 }} ").evaluate(SCOPE) is True
    assert compile_expression("${{ {'n': inputs.limit + 1} }}").evaluate(SCOPE) == {"n": 3}


def test_mixed_text_renders_a_string() -> None:
    expr = compile_expression("https://${{ inputs.host }}/health?s=${{ steps.http.output.status }}")
    assert not expr.native
    assert expr.refs == {"http"} and expr.roots == {"inputs", "steps"}
    assert expr.evaluate(SCOPE) == "https://example.org/health?s=503"


def test_references_come_from_the_syntax_tree() -> None:
    # A step id inside a string literal is not a reference; one behind a filter is.
    assert compile_expression("${{ 'steps.http.output' }}").refs == frozenset()
    assert compile_expression("${{ steps['check-disk'].output | upper }}").refs == {"check-disk"}
    expr = compile_expression("${{ steps.a.output if inputs.limit else steps.b.output }}")
    assert expr.refs == {"a", "b"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("${{ nope.x }}", "unknown name 'nope'"),
        ("${{ steps }}", "must be followed by a step id"),
        ("${{ steps[inputs.host].output }}", "literal step id"),
        ("${{ 1 + }}", "cannot parse"),
        ("${{ steps.check-disk.output }}", "steps['check-disk']"),
    ],
)
def test_definition_errors(source: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(source)
    assert message in str(info.value)
    assert source in str(info.value)


def test_sandbox_blocks_attribute_escapes_and_mutation() -> None:
    with pytest.raises(ExpressionError, match="unsafe"):
        compile_expression("${{ steps.http.__class__.__mro__ }}").evaluate(SCOPE)
    with pytest.raises(ExpressionError):
        compile_expression("${{ steps.http.output['items'].append(4) }}").evaluate(SCOPE)
    assert SCOPE["steps"]["http"]["output"]["items"] == [1, 2, 3]


def test_runtime_errors_name_the_expression() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("${{ steps.http.output.missing }}").evaluate(SCOPE)
    assert "missing" in str(info.value) and "steps.http.output.missing" in str(info.value)
    with pytest.raises(ExpressionError, match=r"TypeError|unsupported"):
        compile_expression("${{ inputs.host + 1 }}").evaluate(SCOPE)


def test_compile_value_walks_nested_structures() -> None:
    value = {"url": "https://${{ inputs.host }}", "ids": ["${{ steps.http.output.items }}", 7], "n": 1}
    compiled = compile_value(value)
    assert compiled.refs == {"http"} and not compiled.is_constant
    assert compiled.render(SCOPE) == {"url": "https://example.org", "ids": [[1, 2, 3], 7], "n": 1}
    constant = compile_value({"a": [1, {"b": "plain {{ text }}"}]})
    assert constant.is_constant
    assert constant.render(SCOPE) is constant.raw
