"""A workflow step and the ``defaults`` it inherits, and how a step becomes a ``Task``.

The fields mirror ``orchestrator.Task`` so nothing is lost in translation, with the
names automation authors know from CI systems: ``needs`` for explicit dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from orchestrator import Target, Task

__all__ = ["STEP_ID_PATTERN", "Defaults", "Step", "to_task"]

#: Like a task id, without the ``[N]`` suffix that only fanned-out items carry.
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"

_TARGET_FORMS = "'local', 'any-device', {device: <id>} or {labels: {<name>: <value>}}"


def _check_target(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One clear message instead of one error per member of the ``Target`` union."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "target", "target must be {forms}, got {value}", {"forms": _TARGET_FORMS, "value": repr(value)}
        ) from None


_TargetType = Annotated[Target | None, WrapValidator(_check_target)]
_Timeout = Annotated[float, Field(gt=0)] | None
_Retries = Annotated[int, Field(ge=0, le=100)] | None
_Backoff = Annotated[float, Field(ge=0)] | None

_DESCRIPTIONS = {
    "timeout": "Seconds one attempt may take before it is cancelled.",
    "retries": "Extra attempts after a retryable failure (0-100).",
    "backoff": "Seconds before the first retry; doubles with each retry.",
    "target": f"Where the step runs: {_TARGET_FORMS}. Default: local.",
}


def _policy(name: str) -> Any:
    """The field declaration shared by a step's policy and the workflow's defaults."""
    return Field(None, description=_DESCRIPTIONS[name])


class Defaults(BaseModel):
    """Policy every step gets unless it sets its own (step > defaults > tool > orchestrator)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: _Timeout = _policy("timeout")
    retries: _Retries = _policy("retries")
    backoff: _Backoff = _policy("backoff")
    target: _TargetType = _policy("target")


_EXPRESSION_OR_BOOL = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "null"}]},
)
_ONE_OR_MORE_IDS = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
)


class Step(BaseModel):
    """One call of a tool. ``args`` may hold ``${{ … }}`` expressions; those are dependencies too."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    id: Annotated[
        str,
        Field(
            pattern=STEP_ID_PATTERN,
            max_length=200,
            description="Unique name of the step; others refer to its result as steps.<id>.output.",
        ),
    ]
    tool: Annotated[str, Field(min_length=1, description="Name of the registered tool to call.")]
    description: str = Field("", description="What the step is for (shown in reports).")
    args: dict[str, Any] = Field(
        default_factory=dict, description="Arguments of the tool; values may contain ${{ … }}."
    )
    needs: Annotated[list[str], _ONE_OR_MORE_IDS] = Field(
        default_factory=list,
        description="Steps that must end first, besides those referenced in expressions.",
    )
    when: Annotated[str | None, _EXPRESSION_OR_BOOL] = Field(
        None,
        description="Run only if this holds, e.g. ${{ steps.disk.output.exit_code != 0 }}; else skip.",
    )
    join: Literal["all", "any"] = Field(
        "all", description="all: every needed step must succeed; any: one is enough (an OR-join)."
    )
    for_each: str | None = Field(
        None,
        description="An expression yielding a list: the step runs once per element, "
        "with the element as ${{ item }}; its output is the list of outputs.",
    )
    timeout: _Timeout = _policy("timeout")
    retries: _Retries = _policy("retries")
    backoff: _Backoff = _policy("backoff")
    target: _TargetType = _policy("target")
    idempotent: bool | None = Field(None, description="Safe to run twice (lets a lost device's work move).")
    needs_approval: bool | None = Field(None, description="Ask the approver before running.")

    @field_validator("needs", mode="before")
    @classmethod
    def _one_id_is_a_list(cls, value: Any) -> Any:
        # `needs: build` is how GitHub Actions users write a single dependency.
        return [value] if isinstance(value, str) else value

    @field_validator("when", mode="before")
    @classmethod
    def _boolean_condition(cls, value: Any) -> Any:
        # `when: false` switches a step off while editing; keep it a condition.
        return f"${{{{ {str(value).lower()} }}}}" if isinstance(value, bool) else value

    @field_validator("for_each", mode="before")
    @classmethod
    def _for_each_is_an_expression(cls, value: Any) -> Any:
        if isinstance(value, list):
            raise PydanticCustomError(
                "for_each_list",
                "for_each takes an expression such as ${{ inputs.files }}; "
                "put a literal list in an input's default and refer to it",
            )
        return value


def to_task(step: Step, defaults: Defaults) -> Task:
    """The engine's ``Task`` for ``step``, with the workflow's defaults filled in."""
    fields: dict[str, Any] = {
        "id": step.id,
        "tool": step.tool,
        "args": step.args,
        "deps": tuple(step.needs),
        "when": step.when,
        "for_each": step.for_each,
        "join": step.join,
        "idempotent": step.idempotent,
        "needs_approval": step.needs_approval,
        "description": step.description,
    }
    for name in ("timeout", "retries", "backoff", "target"):
        value = getattr(step, name)
        if value is None:
            value = getattr(defaults, name)
        if value is not None:
            fields[name] = value
    return Task.model_validate(fields)
