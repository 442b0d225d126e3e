"""``--llm`` at compile time: an LLM resolves what the guide's structure could not.

Two things, in one request: a command for each prose-only step that names an action
("Check the pod's logs"), and a measurable test for each condition that has none ("the
error rate is elevated" → ``> 5``). What comes back is validated, classified like any
command (unknown = mutating, so it needs approval; a pipeline or list is judged as a whole)
and marked as proposed by the LLM in the compiled workflow. A proposal with a newline or
another control character is refused: ``sh -c`` would run each line as its own command.
Nothing here runs without ``--llm``; the client is imported lazily.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator import PlannerError

from .commands import make_command
from .conditions import Condition, Measure
from .steps import Guide, GuideStep

__all__ = ["assist_guide"]

_SYSTEM = (
    "You help turn a troubleshooting guide into runnable steps. For each step, answer the one "
    "shell (or sql/promql/logql) command that performs it, or null if it needs a person (a web "
    "console, a judgement call). For each condition, answer a measurable test on the output of "
    "the check before it: kind 'threshold' (op >, >=, <, <=, ==; numeric value) or 'contains' "
    "(op 'in' or 'not in'; the text to look for), or null if it cannot be measured. Keep "
    "placeholders like $NAMESPACE as they are. Answer JSON only: "
    '{"steps": [{"id": "...", "command": "..." | null, "language": "shell"}], '
    '"conditions": [{"id": "...", "test": {"kind": "...", "op": "...", "value": ...} | null}]}'
)


#: Line breaks (including Unicode ones) and control characters other than a tab.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


class _Step(BaseModel):
    id: str
    command: str | None = None
    language: Literal["shell", "sql", "promql", "logql", "kql"] = "shell"


class _Test(BaseModel):
    kind: Literal["threshold", "contains"]
    op: Literal[">", ">=", "<", "<=", "==", "!=", "in", "not in"]
    value: float | str
    unit: str = ""


class _Condition(BaseModel):
    id: str
    test: _Test | None = None


class _Answer(BaseModel):
    steps: list[_Step] = []
    conditions: list[_Condition] = []


def _questions(guide: Guide) -> tuple[dict[str, GuideStep], dict[str, GuideStep]]:
    actions: dict[str, GuideStep] = {}
    conditions: dict[str, GuideStep] = {}
    for step in guide.root.walk()[1:]:
        if not step.commands and not step.children and step.imperative:
            actions[f"s{step.line}"] = step
        if step.condition is not None and step.condition.test is None:
            conditions[f"c{step.condition.line}"] = step
        for jump in step.jumps:
            if jump.condition is not None and jump.condition.test is None:
                conditions[f"j{jump.line}"] = step
    return actions, conditions


def _unmeasured(step: GuideStep, key: str) -> Condition | None:
    if key.startswith("c"):
        return step.condition
    return next((j.condition for j in step.jumps if f"j{j.line}" == key and j.condition is not None), None)


async def assist_guide(guide: Guide, *, model: str, base_url: str | None, api_key: str | None) -> list[str]:
    """Ask the LLM once; apply its proposals to ``guide`` in place; return what changed."""
    actions, conditions = _questions(guide)
    if not actions and not conditions:
        return []
    request = {
        "guide": guide.title,
        "steps": [{"id": key, "text": (s.text or s.title)[:600]} for key, s in actions.items()],
        "conditions": [
            {"id": key, "condition": condition.text, "step": s.title}
            for key, s in conditions.items()
            if (condition := _unmeasured(s, key)) is not None
        ],
    }
    import openai  # only with --llm

    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed")
    messages: list[Any] = [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": json.dumps(request)},
    ]
    try:
        async with client:
            reply = await client.chat.completions.create(
                model=model, messages=messages, response_format={"type": "json_object"}, temperature=0
            )
    except openai.OpenAIError as exc:
        raise PlannerError(f"--llm: the model server failed: {type(exc).__name__}: {exc}") from None
    content = reply.choices[0].message.content or ""
    try:
        answer = _Answer.model_validate_json(content)
    except ValidationError as exc:
        raise PlannerError(
            f"--llm: unusable answer ({exc.error_count()} problem(s)): {content[:200]!r}"
        ) from None
    changes: list[str] = []
    for proposal in answer.steps:
        step = actions.get(proposal.id)
        if step is None or not proposal.command or not proposal.command.strip():
            continue
        text = proposal.command.strip()
        if _CONTROL.search(text):
            # A newline is a second command to sh -c; NUL and escapes hide text from the reviewer.
            changes.append(
                f"line {step.line}: {step.title!r}: refused the proposed command "
                f"{text[:80]!r}: it contains a newline or control characters"
            )
            continue
        command = make_command(text, proposal.language, step.line)
        command.origin = "llm"
        step.commands.append(command)
        changes.append(f"line {step.line}: {step.title!r} → `{command.text}` ({command.effect})")
    for reading in answer.conditions:
        gated = conditions.get(reading.id)
        old = _unmeasured(gated, reading.id) if gated is not None else None
        if gated is None or old is None or reading.test is None:
            continue
        test = reading.test
        value: float | str = test.value
        if test.kind == "threshold":
            try:
                value = float(value)
            except ValueError:
                continue
        measured = Condition(old.text, old.line, Measure(test.kind, test.op, value, test.unit))
        if gated.condition == old:
            gated.condition = measured
        gated.jumps = [
            dataclasses.replace(j, condition=measured) if j.condition == old else j for j in gated.jumps
        ]
        assert measured.test is not None
        changes.append(f"line {old.line}: {old.text!r} → {measured.test.describe()}")
    return changes
