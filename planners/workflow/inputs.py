"""Declared inputs: their types, and turning overrides (values or ``--set`` strings) into values.

Types are named as in JSON Schema (``string``, ``integer``, ``number``, ``boolean``,
``array``, ``object``) because that is what editors, the CLI's help and tool schemas show.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from .problems import Problem, WorkflowFileError, did_you_mean
from .yaml_source import SourceMap

__all__ = ["Input", "InputType", "parse_input_string", "resolve_inputs", "type_mismatch"]

InputType = Literal["string", "integer", "number", "boolean", "array", "object"]

_ARTICLE = {"string": "a", "integer": "an", "number": "a", "boolean": "a", "array": "an", "object": "an"}
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _no_default_in_schema(schema: JsonDict) -> None:
    # Editors must not suggest `default: null`: writing it makes the input optional.
    schema.pop("default", None)


class Input(BaseModel):
    """One input of a workflow. It is required exactly when it has no ``default``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: InputType = Field("string", description="The value's type, as in JSON Schema.")
    default: Any = Field(
        None,
        description="Value used when the input is not given; leave out to make the input required.",
        json_schema_extra=_no_default_in_schema,
    )
    description: str = Field("", description="What the input means (shown by the CLI).")

    @property
    def required(self) -> bool:
        """True when the file gives no ``default`` (``default: null`` makes it optional)."""
        return "default" not in self.model_fields_set

    @field_validator("default")
    @classmethod
    def _default_has_the_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is not None and value is not None:
            wrong = type_mismatch(kind, value)
            if wrong:
                raise PydanticCustomError("default_type", "default {wrong}", {"wrong": wrong})
        return value


def type_mismatch(kind: InputType, value: Any) -> str | None:
    """Why ``value`` is not of type ``kind`` (``"must be an integer, got 'x'"``), or ``None``."""
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[kind]
    return None if ok else f"must be {_ARTICLE[kind]} {kind}, got {_describe(value)}"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{type(value).__name__} {text[:57]}..."


def parse_input_string(kind: InputType, text: str) -> Any:
    """Parse a command-line value by the input's declared type; ``ValueError`` says why not."""
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"must be an integer, got {text!r}") from None
    if kind == "number":
        return _parse_number(text)
    if kind == "boolean":
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(f"must be a boolean (true/false, yes/no, on/off, 1/0), got {text!r}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        example = '["a", "b"]' if kind == "array" else '{"key": "value"}'
        raise ValueError(f"must be {_ARTICLE[kind]} {kind} written as JSON, e.g. {example}: {exc}") from None
    wrong = type_mismatch(kind, value)
    if wrong:
        raise ValueError(wrong)
    return value


def _parse_number(text: str) -> int | float:
    try:
        return int(text.strip(), 10)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {text!r}")
    return number


def resolve_inputs(
    declared: Mapping[str, Input],
    overrides: Mapping[str, Any] | None,
    *,
    from_strings: bool,
    source_map: SourceMap,
) -> dict[str, Any]:
    """Every declared input's value: the override if given, else the default.

    All problems (unknown names, missing required inputs, wrong types) are raised
    together, each pointing at the input's declaration.
    """
    overrides = dict(overrides or {})
    problems = [_unknown(name, declared, source_map) for name in overrides if name not in declared]
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        where = ("inputs", name)
        if name not in overrides:
            if spec.required:
                problems.append(
                    source_map.problem(
                        where, f"missing required input {name!r}", hint=f"give it with --set {name}=VALUE"
                    )
                )
            else:
                values[name] = copy.deepcopy(spec.default)  # a run must not mutate the shared default
            continue
        try:
            values[name] = _coerce(spec.type, overrides[name], from_strings=from_strings)
        except ValueError as exc:
            problems.append(source_map.problem(where, f"input {name!r} {exc}"))
    if problems:
        raise WorkflowFileError(problems)
    return values


def _coerce(kind: InputType, value: Any, *, from_strings: bool) -> Any:
    if from_strings and isinstance(value, str):
        return parse_input_string(kind, value)
    wrong = type_mismatch(kind, value)
    if wrong:
        raise ValueError(wrong)
    return value


def _unknown(name: str, declared: Mapping[str, Input], source_map: SourceMap) -> Problem:
    hint = did_you_mean(name, declared)
    if hint is None:
        hint = f"declared inputs: {', '.join(declared)}" if declared else "this workflow declares no inputs"
    return source_map.problem(("inputs",), f"unknown input {name!r}", hint=hint, key=True)
