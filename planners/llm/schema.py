"""The plan and joiner formats: pydantic models, and JSON Schemas for ``response_format``.

Constrained decoding is only as good as the schema, so the plan schema is tight: one
variant per tool, the tool name an enum of one, the arguments shaped from the tool's own
JSON Schema. Every non-string argument position also accepts a reference string
(``"$t1"``), since a whole-value reference is how an output flows into a number or a list.
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tools import Tool, ToolRegistry

from .references import REFERENCE_PATTERN, TASK_ID_PATTERN

__all__ = [
    "JoinDecision",
    "PlanTask",
    "join_schema",
    "plan_schema",
]

_STRICT_UNSUPPORTED = ("default", "examples", "discriminator")
#: What a model copies from a format line instead of answering: "<the answer>", "...".
_PLACEHOLDER = re.compile(r"^\s*(<[^<>]{0,80}>|\.\.\.|…)\s*$")


def _task_id(value: Any) -> Any:
    """Accept LLMCompiler-style numbers (``1``) and references (``"$t1"``) where an id is meant."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return f"t{value}"
    if isinstance(value, str):
        text = value.strip().lstrip("$").strip("{}")
        return f"t{text}" if text.isdigit() else text
    return value


TaskId = Annotated[str, BeforeValidator(_task_id), Field(pattern=TASK_ID_PATTERN)]


class PlanTask(BaseModel):
    """One task as the model writes it. Unknown keys (a "thought") are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: TaskId
    tool: Annotated[str, Field(min_length=1)]
    args: dict[str, Any] = Field(default_factory=dict)
    deps: list[TaskId] = Field(default_factory=list)


class JoinDecision(BaseModel):
    """The joiner's verdict: ``finish`` with the answer, or ``replan`` with the reason."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    thought: str = ""
    action: Literal["finish", "replan"]
    answer: str = ""
    reason: str = ""

    @model_validator(mode="after")
    def _answer_when_finishing(self) -> JoinDecision:
        if self.action == "finish" and not self.answer.strip():
            raise ValueError("action 'finish' needs a non-empty 'answer'")
        if self.action == "finish" and _PLACEHOLDER.match(self.answer):
            raise ValueError(
                f"'answer' is {self.answer.strip()!r}, a placeholder, not an answer: write the answer itself"
            )
        return self


# -- JSON Schemas ----------------------------------------------------------------------

_REFERENCE = {"type": "string", "pattern": REFERENCE_PATTERN}
_ID = {"type": "string", "pattern": TASK_ID_PATTERN}


def _is_plain_string(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and "enum" not in node and "const" not in node


def _widen_inside(node: Any) -> Any:
    """``node`` with references accepted in its items and properties (not in itself)."""
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "items" in node:
        node["items"] = _accept_references(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _accept_references(node["additionalProperties"])
    if "properties" in node:
        node["properties"] = {k: _accept_references(v) for k, v in node["properties"].items()}
    return node


def _accept_references(node: Any) -> Any:
    """Let every non-string position also hold a whole-value reference string."""
    if not isinstance(node, dict):
        return node
    node = _widen_inside(node)
    for key in ("anyOf", "oneOf"):
        if key in node:
            branches = [_widen_inside(b) for b in node.pop(key)]
            if not any(_is_plain_string(b) for b in branches):
                branches.append(dict(_REFERENCE))
            return {**node, "anyOf": branches}
    if not node or _is_plain_string(node):  # {} accepts anything, a string included
        return node
    return {"anyOf": [node, dict(_REFERENCE)]}


def _relocate_defs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """Move a tool schema's ``$defs`` into the plan schema's, renamed so tools cannot clash."""
    local = schema.pop("$defs", {})
    renamed = {name: f"{prefix}{name}" for name in local}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                    name = value.removeprefix("#/$defs/")
                    out[key] = f"#/$defs/{renamed.get(name, name)}"
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for name, definition in local.items():
        defs[renamed[name]] = rewrite(definition)
    result: dict[str, Any] = rewrite(schema)
    return result


def _task_variant(tool: Tool, defs: dict[str, Any]) -> dict[str, Any]:
    prefix = re.sub(r"[^A-Za-z0-9_]", "_", tool.name) + "__"
    args = _relocate_defs(copy.deepcopy(tool.parameters_schema), prefix, defs)
    # Each argument may be a reference; the arguments object itself may not.
    args["properties"] = {k: _accept_references(v) for k, v in args.get("properties", {}).items()}
    variant: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": dict(_ID),
            "tool": {"type": "string", "enum": [tool.name]},
            "args": args,
            "deps": {"type": "array", "items": dict(_ID)},
        },
        "required": ["id", "tool", "args", "deps"],
        "additionalProperties": False,
    }
    if tool.description:
        variant["description"] = tool.description.splitlines()[0][:200]
    return variant


def plan_schema(tools: ToolRegistry, *, allow_empty: bool = False) -> dict[str, Any]:
    """The JSON Schema of a plan over ``tools``: ``{"tasks": [ ...one variant per tool... ]}``.

    A plan needs a task (``minItems: 1``), as the validator says; only a replan after a
    failure may be empty (``allow_empty``: "nothing can route around it").
    """
    defs: dict[str, Any] = {}
    variants = [_task_variant(tool, defs) for tool in tools]
    items: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    tasks: dict[str, Any] = {"type": "array", "items": items}
    if not allow_empty:
        tasks["minItems"] = 1
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"tasks": tasks},
        "required": ["tasks"],
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def join_schema(*, allow_replan: bool) -> dict[str, Any]:
    """The joiner's schema; once replans are used up, ``finish`` is the only action it allows."""
    actions = ["finish", "replan"] if allow_replan else ["finish"]
    return {
        "type": "object",
        "properties": {
            "thought": {"type": "string"},
            "action": {"type": "string", "enum": actions},
            "answer": {"type": "string"},
            "reason": {"type": "string"},
        },
        "required": ["thought", "action", "answer", "reason"],
        "additionalProperties": False,
    }


def strict_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A copy fit for OpenAI's strict mode, and whether strict mode can hold it.

    Strict mode wants every property required (optional ones become nullable; the planner
    drops the nulls again), ``additionalProperties: false`` everywhere and no ``default``.
    A free-form object (``dict[str, Any]``) cannot be strict; then the schema is sent
    with ``strict: false`` and the server treats it as guidance.
    """
    feasible = True

    def visit(node: Any) -> Any:
        nonlocal feasible
        if isinstance(node, list):
            return [visit(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {k: visit(v) for k, v in node.items() if k not in _STRICT_UNSUPPORTED}
        if "oneOf" in out:
            out["anyOf"] = out.pop("oneOf")
        is_object = out.get("type") == "object" or "properties" in out
        if is_object:
            extra = out.get("additionalProperties")
            if extra not in (None, False) or ("properties" not in out and extra is None):
                feasible = False
            properties = out.get("properties", {})
            required = set(out.get("required", ()))
            out["properties"] = {
                key: value if key in required else {"anyOf": [value, {"type": "null"}]}
                for key, value in properties.items()
            }
            out["required"] = list(properties)
            out["additionalProperties"] = False
        return out

    return visit(schema), feasible
