"""Every schema we send compiles in the grammar compilers servers use for constrained decoding.

llama.cpp turns a JSON Schema into a GBNF grammar; a pattern it cannot read (``\\$``)
made its server crash. vLLM and SGLang use xgrammar, outlines-core or llguidance. The
compilers installable here run on every schema the planner sends (llguidance and
outlines-core are in the dev extra, so CI runs them); llama-cpp-python's own converter
runs too when it is importable. Beside them, a lint forbids the regex features some
compiler rejects: backslash escapes, groups with ``(?``, unanchored patterns.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from planners.llm import join_schema, plan_schema
from planners.llm.formats import FormatMode, response_format
from tools import Tool, ToolRegistry, tool
from tools.builtin import BUILTIN_TOOLS


class Point(BaseModel):
    x: float
    y: float = 0.0


@tool
def distance(a: Point, b: Point) -> float:
    """Distance between two points."""
    return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


@tool
def tag(labels: list[str], weights: dict[str, float] | None = None, limit: int = 3) -> str:
    """Tag something (lists, optional maps, defaults)."""
    return ",".join(labels[:limit])


def registries(toolset: list[Tool]) -> dict[str, ToolRegistry]:
    return {
        "builtins": ToolRegistry(list(BUILTIN_TOOLS)),
        "test tools": ToolRegistry([*toolset, distance, tag]),
        "one tool": ToolRegistry([distance]),
    }


def sent_schemas(toolset: list[Tool]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema the planner puts into a ``response_format``, in each format that carries one."""
    for name, registry in registries(toolset).items():
        for empty in (False, True):
            yield f"plan over {name} (empty {empty})", plan_schema(registry, allow_empty=empty)
    for replan in (False, True):
        yield f"join (replan {replan})", join_schema(allow_replan=replan)


def formats(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The schema as each response format sends it (strict-mode rewriting included)."""
    for mode in (FormatMode.JSON_SCHEMA, FormatMode.JSON_OBJECT):
        fmt = response_format(mode, "plan", schema)
        assert fmt is not None
        yield fmt["json_schema"]["schema"] if mode is FormatMode.JSON_SCHEMA else fmt["schema"]


def patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from patterns(item)


def test_patterns_use_only_features_every_grammar_compiler_reads(toolset: list[Tool]) -> None:
    seen = 0
    for name, schema in sent_schemas(toolset):
        for pattern in patterns(schema):
            seen += 1
            assert "\\" not in pattern, f"{name}: backslash escape in {pattern!r} (write [$], [.])"
            assert "(?" not in pattern, f"{name}: look-around or flags in {pattern!r}"
            assert pattern.startswith("^") and pattern.endswith("$"), f"{name}: unanchored {pattern!r}"
    assert seen, "the plan schemas carry reference and id patterns"


def test_every_sent_schema_compiles_in_llguidance(toolset: list[Tool]) -> None:
    llguidance = pytest.importorskip("llguidance")
    for name, schema in sent_schemas(toolset):
        for sent in formats(schema):
            grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(sent))
            problem = llguidance.LLMatcher.validate_grammar(grammar)
            assert not problem, f"{name}: {problem}"


def test_every_sent_schema_compiles_in_outlines_core(toolset: list[Tool]) -> None:
    json_schema = pytest.importorskip("outlines_core.json_schema")
    for name, schema in sent_schemas(toolset):
        for sent in formats(schema):
            try:
                regex = json_schema.build_regex_from_schema(json.dumps(sent))
            except Exception as exc:  # its errors have no common base class
                pytest.fail(f"{name}: {exc}")
            assert regex


def test_llguidance_rejects_what_the_lint_forbids() -> None:
    """The lint above is not arbitrary: a look-ahead is what a real compiler refuses."""
    llguidance = pytest.importorskip("llguidance")
    bad = {"type": "string", "pattern": "^(?=t)t[0-9]+$"}
    grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(bad))
    assert "look" in llguidance.LLMatcher.validate_grammar(grammar)


def test_every_sent_schema_converts_with_llama_cpp(toolset: list[Tool]) -> None:
    """llama-cpp-python's JSON-schema-to-GBNF converter, and its grammar parser, when installed."""
    try:
        grammar_module = importlib.import_module("llama_cpp.llama_grammar")
    except (ImportError, OSError, RuntimeError):
        pytest.skip("llama-cpp-python is not installed (see docs/llm.md for the recipe)")
    for name, schema in sent_schemas(toolset):
        for sent in formats(schema):
            gbnf = grammar_module.json_schema_to_gbnf(json.dumps(sent))
            assert "\\$" not in gbnf and "\\." not in gbnf, f"{name}: escapes llama.cpp cannot parse"
            grammar_module.LlamaGrammar.from_string(gbnf, verbose=False)
