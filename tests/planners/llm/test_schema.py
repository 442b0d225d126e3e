"""The JSON Schemas sent as response_format: tight, and strict where strict mode allows."""

from __future__ import annotations

import re

from pydantic import BaseModel

from orchestrator import Orchestrator
from planners.llm import join_schema, plan_schema
from planners.llm.references import REFERENCE_PATTERN
from planners.llm.schema import strict_schema
from tools import tool


class Point(BaseModel):
    x: float
    y: float = 0.0


@tool
def distance(a: Point, b: Point) -> float:
    """Distance between two points."""
    return float(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5)


def variant(schema: dict, name: str) -> dict:  # type: ignore[type-arg]
    items = schema["properties"]["tasks"]["items"]
    for candidate in items.get("anyOf", [items]):
        if candidate["properties"]["tool"]["enum"] == [name]:
            return candidate  # type: ignore[no-any-return]
    raise AssertionError(name)


def test_one_variant_per_tool_with_its_argument_shapes(orchestrator: Orchestrator) -> None:
    schema = plan_schema(orchestrator.tools)
    add = variant(schema, "add")
    assert add["required"] == ["id", "tool", "args", "deps"]
    assert add["additionalProperties"] is False
    args = add["properties"]["args"]
    assert args["required"] == ["a", "b"] and args["additionalProperties"] is False
    assert {"type": "number"} in [
        {k: v for k, v in b.items() if k == "type"} for b in args["properties"]["a"]["anyOf"]
    ]
    assert {"type": "string", "pattern": REFERENCE_PATTERN} in args["properties"]["a"]["anyOf"]
    search = variant(schema, "search")
    assert search["properties"]["args"]["properties"]["query"]["type"] == "string"


def test_the_reference_pattern_matches_what_the_translator_reads() -> None:
    # Index paths ($t1[0]) are not in the grammar's pattern: "[" needs an escape there
    # (see test_grammar.py); the translator still reads them.
    pattern = re.compile(REFERENCE_PATTERN)
    for good in ("$t1", "$t12.items.name", "${t3}", "${t3.x}"):
        assert pattern.match(good), good
    for bad in ("$x", "t1", "$t1 and more", "$1", "$t1.", "${t1.x.}"):
        assert not pattern.match(bad), bad


def test_nested_models_keep_their_definitions() -> None:
    schema = plan_schema(Orchestrator([distance]).tools)
    assert "distance__Point" in schema["$defs"]
    refs = [
        b
        for b in variant(schema, "distance")["properties"]["args"]["properties"]["a"]["anyOf"]
        if "$ref" in b
    ]
    assert refs == [{"$ref": "#/$defs/distance__Point"}]
    strict, feasible = strict_schema(schema)
    assert feasible
    point = strict["$defs"]["distance__Point"]
    assert point["required"] == ["x", "y"]
    assert point["properties"]["y"]["anyOf"][1] == {"type": "null"}
    assert "default" not in point["properties"]["y"]["anyOf"][0]


def test_the_join_schema_offers_replan_only_while_replans_are_left() -> None:
    assert join_schema(allow_replan=True)["properties"]["action"]["enum"] == ["finish", "replan"]
    assert join_schema(allow_replan=False)["properties"]["action"]["enum"] == ["finish"]
