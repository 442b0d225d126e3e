"""Deciding a guide's condition at run time: its measurable test, else an LLM, else a person.

The order is fixed and visible in every verdict (``by``): a test on the evidence step's
output ("above 8%" → the number it printed > 8) needs nothing else; an LLM judge is used
only when one was configured (``--llm``); then the operator at the terminal; without a
terminal the run fails with a message saying how to proceed — unless ``--yes`` was given,
which takes an undecidable condition as true so every branch's checks run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools import ToolError

__all__ = ["ConditionJudge", "Judgement", "LLMJudge", "OperatorAsk", "evaluate_test", "evidence_text"]

#: Asks the operator a yes/no question; returns None when there is nobody to ask.
OperatorAsk = Callable[[str], Awaitable[bool | None]]

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class Judgement(BaseModel):
    """A decided condition."""

    holds: bool = Field(description="Whether the condition holds.")
    by: Literal["test", "llm", "operator", "undecided"] = Field(description="Who decided.")
    reason: str = Field(description="Why, in one line.")
    condition: str = Field(description="The condition as the guide words it.")


def evidence_text(evidence: Any) -> str:
    """What a step printed: stdout (and stderr) of a command, rows of a query, else JSON."""
    if isinstance(evidence, Mapping):
        if "stdout" in evidence:
            return f"{evidence.get('stdout', '')}{evidence.get('stderr', '')}"
        if "rows" in evidence:
            return json.dumps(evidence["rows"], default=str)
    if isinstance(evidence, str):
        return evidence
    return "" if evidence is None else json.dumps(evidence, default=str)


def _measured(evidence: Any) -> float | None:
    if isinstance(evidence, Mapping) and isinstance(evidence.get("rows"), list) and evidence["rows"]:
        first = evidence["rows"][0]
        values = list(first.values()) if isinstance(first, Mapping) else []
        for value in values:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return None
    numbers = _NUMBER.findall(evidence_text(evidence))
    # Only an unambiguous reading counts: one number printed. Anything else goes to a judge.
    return float(numbers[0]) if len(numbers) == 1 else None


def evaluate_test(test: Mapping[str, Any], evidence: Any) -> tuple[bool, str] | None:
    """Apply a measurable test to a step's output; None when the output does not say."""
    op = str(test.get("op", ""))
    value = test.get("value")
    if test.get("kind") == "contains":
        found = str(value) in evidence_text(evidence)
        holds = found if op == "in" else not found
        return holds, f"output {'contains' if found else 'does not contain'} {value!r}"
    if op not in _OPS or not isinstance(value, int | float):
        return None
    measured = _measured(evidence)
    if measured is None:
        return None
    unit = str(test.get("unit", ""))
    return _OPS[op](
        measured, float(value)
    ), f"measured {measured:g}{unit} {op} {value:g}{unit} is {_OPS[op](measured, float(value))}"


class LLMJudge:
    """Asks an OpenAI-compatible model whether a condition holds, given a step's output."""

    def __init__(self, *, model: str, base_url: str | None, api_key: str | None) -> None:
        self.model = model
        self.base_url = base_url
        self.api_key = api_key

    async def __call__(self, condition: str, evidence: str, context: str) -> tuple[bool, str]:
        # Imported here: runs without --llm never load the client, let alone use the network.
        import openai

        client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "not-needed")
        messages: list[Any] = [
            {
                "role": "system",
                "content": "You judge one condition of a troubleshooting guide against a command's output. "
                'Answer with JSON only: {"holds": true|false, "reason": "<one sentence>"}.',
            },
            {
                "role": "user",
                "content": f"Condition: {condition}\nGuide context: {context}\nOutput:\n{evidence[-6000:]}",
            },
        ]
        try:
            async with client:
                reply = await client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    response_format={"type": "json_object"},
                    temperature=0,
                )
        except openai.OpenAIError as exc:
            raise ToolError(f"LLM judge failed: {type(exc).__name__}: {exc}", retryable=True) from None
        content = reply.choices[0].message.content or ""
        try:
            data = json.loads(content)
            holds = data["holds"]
        except (ValueError, KeyError, TypeError):
            raise ToolError(
                f"LLM judge answered without a verdict: {content[:200]!r}", retryable=True
            ) from None
        if not isinstance(holds, bool):
            raise ToolError(f"LLM judge answered holds={holds!r}, not true/false", retryable=True)
        return holds, str(data.get("reason", ""))[:300]


class ConditionJudge:
    """Decides conditions: test → LLM (if configured) → operator (if a terminal) → undecided.

    An undecided condition does not hold: the remedy it gates is skipped, and the run says so.
    ``--yes`` approves commands and never decides a condition.
    """

    def __init__(self, *, llm: LLMJudge | None = None, ask: OperatorAsk | None = None) -> None:
        self.llm = llm
        self.ask = ask

    async def decide(
        self,
        condition: str,
        evidence: Any = None,
        test: Mapping[str, Any] | None = None,
        guide_line: int = 0,
        ask: OperatorAsk | None = None,
    ) -> Judgement:
        """Decide ``condition``; ``ask`` (the run's prompter) is the operator when the judge has none."""
        if isinstance(evidence, BaseModel):  # a tool's typed result, e.g. SqlResult
            evidence = evidence.model_dump(mode="json")
        if test:
            verdict = evaluate_test(test, evidence)
            if verdict is not None:
                return Judgement(holds=verdict[0], by="test", reason=verdict[1], condition=condition)
        text = evidence_text(evidence)
        if self.llm is not None:
            holds, reason = await self.llm(condition, text, f"guide line {guide_line}")
            return Judgement(holds=holds, by="llm", reason=reason, condition=condition)
        operator = self.ask if self.ask is not None else ask
        if operator is not None:
            shown = f"\n{text.strip()[-1500:]}\n" if text.strip() else " "
            answer = await operator(f"[guide line {guide_line}]{shown}Does this hold: {condition}?")
            if answer is not None:
                return Judgement(
                    holds=answer, by="operator", reason="answered at the terminal", condition=condition
                )
        # Nobody can decide it: no test, no LLM judge, no terminal. --yes approves commands; it
        # never decides a condition. The branch behind it is not taken (a remedy stays undone).
        return Judgement(
            holds=False,
            by="undecided",
            reason="nobody could decide it (no measurable test, no --llm judge, no terminal): "
            "the branch it gates is skipped",
            condition=condition,
        )
