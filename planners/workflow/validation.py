"""pydantic's validation errors, as problems at the line, column and step they are about.

pydantic locates an error by path (``("steps", 3, "retrys")``); the source map turns the
path into a position, and the messages are rephrased for people editing a YAML file:
"unknown key 'retrys' (did you mean 'retries'?)" rather than "Extra inputs are not permitted".
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .problems import Problem, did_you_mean
from .yaml_source import Path, SourceMap

__all__ = ["validation_problems"]

#: Keys people bring from other tools, and what this format calls them.
_ALIASES = {
    "deps": "needs",
    "depends_on": "needs",
    "dependencies": "needs",
    "after": "needs",
    "if": "when",
    "condition": "when",
    "with": "args",
    "arguments": "args",
    "params": "args",
    "parameters": "args",
    "uses": "tool",
    "foreach": "for_each",
    "loop": "for_each",
    "matrix": "for_each",
    "retry": "retries",
    "approval": "needs_approval",
    "name": "description",
    "jobs": "steps",
    "tasks": "steps",
}
_SPECIAL_HINTS = {
    "required": "an input is required exactly when it has no default",
}
_NAME_RULES = {
    "steps": "a step id starts with a letter or '_' and has only letters, digits, '_' and '-'",
    "inputs": "an input name starts with a letter or '_' and has only letters, digits and '_' "
    "(expressions read it as inputs.<name>)",
    "outputs": "an output name starts with a letter or '_' and has only letters, digits, '_' and '-'",
}
#: Our own error types already quote the offending value.
_QUOTES_INPUT = frozenset({"target", "default_type", "for_each_list", "missing", "extra_forbidden"})


def validation_problems(
    error: ValidationError, data: Any, source_map: SourceMap, root: type[BaseModel]
) -> list[Problem]:
    """One problem per pydantic error, each at its key or value."""
    return [_problem(item, data, source_map, root) for item in error.errors(include_url=False)]


def _problem(item: ErrorDetails, data: Any, source_map: SourceMap, root: type[BaseModel]) -> Problem:
    loc: Path = tuple(item["loc"])
    kind = item["type"]
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    step, relative = _step_of(loc, data)
    if kind == "missing":
        return source_map.problem(loc[:-1], f"missing required key {loc[-1]!r}", step=step)
    if kind == "extra_forbidden":
        hint = _key_hint(str(loc[-1]), _model_at(root, loc[:-1]))
        return source_map.problem(loc, f"unknown key {loc[-1]!r}", step=step, hint=hint, key=True)
    if kind == "string_pattern_mismatch" and loc[:1] in (("steps",), ("inputs",), ("outputs",)):
        rule = _NAME_RULES[str(loc[0])]
        return source_map.problem(loc, f"invalid name {item['input']!r}", step=step, hint=rule, key=is_key)
    message = f"{_label(relative)}: {_rephrase(item)}" if relative else _rephrase(item)
    return source_map.problem(loc, message, step=step, hint=_shape_hint(loc, item), key=is_key)


def _step_of(loc: Path, data: Any) -> tuple[str | None, Path]:
    """The id of the step ``loc`` is inside (if it has a usable one) and the path within it."""
    if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], int):
        return None, loc
    try:
        step_id = data["steps"][loc[1]]["id"]
    except (KeyError, IndexError, TypeError):
        return None, loc
    return (step_id, loc[2:]) if isinstance(step_id, str) else (None, loc)


def _label(path: Path) -> str:
    """``("steps", 2, "args", "x")`` → ``steps[2].args.x``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _rephrase(item: ErrorDetails) -> str:
    kind, value = item["type"], item["input"]
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        message = f"must be a mapping (key: value), got {_type_name(value)}"
    elif kind == "list_type":
        message = f"must be a list (- item), got {_type_name(value)}"
    else:
        message = item["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        message = message.replace("List should have", "must have")
    if kind not in _QUOTES_INPUT and isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60:
        message += f"; got {value!r}"
    return message


def _type_name(value: Any) -> str:
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return names.get(type(value), type(value).__name__)


def _shape_hint(loc: Path, item: ErrorDetails) -> str | None:
    if loc == ("steps",) and isinstance(item["input"], dict):
        return "write steps as a list: `- id: first` then `tool: …` under it"
    if loc == ("steps",) and item["type"] == "too_short":
        return "a workflow needs at least one step"
    return None


def _key_hint(key: str, model: type[BaseModel] | None) -> str | None:
    allowed = list(model.model_fields) if model is not None else []
    alias = _ALIASES.get(key.lower())
    if alias in allowed:
        return f"did you mean {alias!r}?"
    if key in _SPECIAL_HINTS:
        return _SPECIAL_HINTS[key]
    return did_you_mean(key, allowed) or (f"allowed keys: {', '.join(allowed)}" if allowed else None)


def _model_at(root: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path`` (``("steps", 0)`` → ``Step``)."""
    annotation: Any = root
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, …]`` → ``X``; ``X | None`` → ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation
