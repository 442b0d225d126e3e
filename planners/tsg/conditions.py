"""Control-flow phrases in prose: conditions, jumps, "otherwise", "stop", "repeat until", "in parallel".

Guides say "if … go to step 3", "otherwise proceed", "please look at the Troubleshooting
section", "repeat until the pod is Ready (at most 5 times)". These are recognised by
phrase, sentence by sentence; what is not recognised stays prose (and the LLM, when
configured, may resolve it). A condition keeps its text and, when the text names something
measurable, a ``Measure``: a threshold ("above 8%") or a state literal ("not in HEALTH_OK").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Condition",
    "Jump",
    "Measure",
    "Repeat",
    "condition_clause",
    "find_jumps",
    "find_repeat",
    "find_test",
    "is_otherwise",
    "mentions_parallel",
    "sentences",
    "states_end",
]


@dataclass(frozen=True)
class Measure:
    """A measurable condition: ``op`` applied to the number or text a step printed."""

    kind: Literal["threshold", "contains"]
    op: str  # >, >=, <, <=, ==, != for thresholds; "in" / "not in" for contains
    value: float | str
    unit: str = ""

    def as_args(self) -> dict[str, Any]:
        result: dict[str, Any] = {"kind": self.kind, "op": self.op, "value": self.value}
        if self.unit:
            result["unit"] = self.unit
        return result

    def describe(self) -> str:
        if self.kind == "contains":
            return f"output {'does not contain' if self.op == 'not in' else 'contains'} {self.value!r}"
        return f"measured {self.op} {self.value:g}{self.unit}"


@dataclass(frozen=True)
class Condition:
    text: str
    line: int
    test: Measure | None = None


@dataclass(frozen=True)
class Jump:
    line: int
    condition: Condition | None
    step: int | None = None  # "go to step 3"
    section: str | None = None  # an anchor or a title
    back: bool = False  # "go back to step 2"
    max_iterations: int | None = None  # "… at most 3 times"
    interval_s: float | None = None  # "… every 10 seconds"


@dataclass(frozen=True)
class Repeat:
    until: Condition
    max_iterations: int
    interval_s: float


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\[])")
_IF = re.compile(r"^(?:if|when|in case|whenever)\b\s*(?P<rest>.+)$", re.IGNORECASE)
_CLAUSE_END = re.compile(
    r",|\bthen\b|\bit means\b|\bthis means\b|\byou should\b|\bit is likely\b|\byou may\b|\byou can\b|\bplease\b",
    re.IGNORECASE,
)
_OTHERWISE = re.compile(r"^(?:otherwise|else|if not)\b", re.IGNORECASE)
_STEP_JUMP = re.compile(
    r"\b(?:go|jump|skip|continue|proceed|return|move on|loop)\s+(?P<back>back\s+)?(?:on\s+)?(?:to|with)\s+step\s+(?P<n>\d+)",
    re.IGNORECASE,
)
_SECTION_JUMP = re.compile(
    r"\b(?:(?:go|jump|skip|continue|proceed|refer|look|see|move on)\s+(?:\w+\s+){0,2}?(?:to|at)|see(?=\s+(?:the\s+)?section\b))"
    r"\s+(?:the\s+)?"
    r"(?:section\s+[\"“']?(?P<a>[^\"”'.,]+)[\"”']?|[\"“']?(?P<b>[\w\s/-]+?)[\"”']?\s+section)"
    # "go back to Diagnosis": a capitalised name, resolved only against a section title
    r"|\bgo back to\s+(?:the\s+)?(?P<c>(?-i:[A-Z])[\w-]*(?:\s+(?-i:[A-Z])[\w-]*){0,3})\b"
    # 'go to "Free disk space" below', 'Continue with "Check recovery"', 'Repeat from "Find out why…"':
    # a quoted name after a jump verb, resolved only against a heading title
    r"|\b(?P<verb>go|jump|skip|continue|proceed|move on|return|repeat|start over|restart)"
    r"\s+(?:back\s+)?(?:on\s+)?(?:to|with|from|at)\s+(?:the\s+)?[\"“](?P<d>[^\"”]{2,80})[\"”]",
    re.IGNORECASE,
)
_END = re.compile(
    r"\b(?:stop here|escalate|open a support case|contact (?:the )?[\w\s-]{0,40}?support|page the on-?call|"
    r"no further action|you are done|this is the end of (?:the |this )?(?:tsg|guide|runbook|procedure))\b",
    re.IGNORECASE,
)
_PARALLEL = re.compile(r"\bin parallel\b|\bat the same time\b|\bsimultaneously\b", re.IGNORECASE)
_REPEAT = re.compile(r"\b(?:repeat|retry|re-run|rerun)\b[^.]*?\buntil\s+(?P<cond>[^.;(]+)", re.IGNORECASE)
_TIMES = re.compile(
    r"\b(?:at most|up to|no more than|maximum of)\s+(?P<n>\d+)\s+(?:times|attempts|iterations)", re.I
)
_EVERY = re.compile(
    r"\bevery\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|milliseconds?|s|seconds?|minutes?|min)\b", re.I
)

_COMPARATORS: list[tuple[str, str]] = [
    (r">=|at least|no less than", ">="),
    (r"<=|at most|no more than", "<="),
    (r">|above|over|greater than|more than|exceeds?|exceeding|higher than", ">"),
    (r"<|below|under|less than|lower than|fewer than", "<"),
    (r"==|equals?|is exactly", "=="),
]
_NUMBER = (
    r"(?P<num>-?\d+(?:\.\d+)?)(?!\s*(?:times|attempts|iterations|tries)\b)"
    r"\s*(?P<unit>%|percent|ms|milliseconds|s\b|seconds|mb|gb|kb|mib|gib)?"
)
_THRESHOLDS = [(re.compile(rf"(?:{words})\s*{_NUMBER}", re.IGNORECASE), op) for words, op in _COMPARATORS]
_STATE = re.compile(
    r"\b(?P<neg>is not|isn't|not in|does not (?:show|contain|report)|doesn't (?:show|contain))?\s*"
    r"(?:is|in|shows?|contains?|reports?|stuck in|says|answers?|returns?|prints?)?\s+(?:in\s+)?(?:the\s+)?"
    r"(?:`(?P<code>[^`]+)`|\b(?P<caps>[A-Z][A-Z0-9]*_[A-Z0-9_]+|[A-Z]{4,})\b)",
)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def find_test(text: str) -> Measure | None:
    """A measurable reading of a condition, or None when it is only prose."""
    for pattern, op in _THRESHOLDS:
        match = pattern.search(text)
        if match:
            unit = (match.group("unit") or "").lower()
            unit = {"percent": "%", "milliseconds": "ms", "seconds": "s"}.get(unit, unit)
            return Measure("threshold", op, float(match.group("num")), unit)
    for match in _STATE.finditer(text):
        literal = match.group("code") or match.group("caps")
        verb = match.group(0)
        if not literal or not re.search(
            r"\b(is|in|show|contain|report|says|stuck|answer|return|print)", verb, re.IGNORECASE
        ):
            continue
        if match.group("code") and " " in literal:
            continue  # `ceph status` names a command, not a state
        negated = bool(match.group("neg")) or bool(re.search(r"\bnot\b", text[: match.start()][-12:]))
        return Measure("contains", "not in" if negated else "in", literal)
    return None


def condition_clause(sentence: str, line: int) -> tuple[Condition, str] | None:
    """``If X, then Y`` → (condition X, consequence Y); None if the sentence is not conditional."""
    match = _IF.match(sentence.strip())
    if not match:
        return None
    rest = match.group("rest")
    end = _CLAUSE_END.search(rest)
    text = (rest[: end.start()] if end else rest).strip().rstrip(":.")
    consequence = rest[end.end() :].strip() if end else ""
    if not text:
        return None
    return Condition(text, line, find_test(text)), consequence


def is_otherwise(sentence: str) -> bool:
    return bool(_OTHERWISE.match(sentence.strip()))


def find_jumps(sentence: str, line: int, anchors: list[str]) -> list[Jump]:
    """Jumps a sentence states; ``anchors`` are the ``#anchor`` links it holds."""
    clause = condition_clause(sentence, line)
    condition = clause[0] if clause else None
    jumps: list[Jump] = []
    times = _TIMES.search(sentence)
    bound = int(times.group("n")) if times else None
    for match in _STEP_JUMP.finditer(sentence):
        back = bool(match.group("back"))
        jumps.append(
            Jump(
                line,
                condition,
                int(match.group("n")),
                back=back,
                max_iterations=bound,
                interval_s=_interval(sentence),
            )
        )
    if not jumps:
        section = _SECTION_JUMP.search(sentence)
        if section:
            name = (section.group("a") or section.group("b") or "").strip()
            if name and name.lower() not in ("following", "next", "above", "below", "this", "same"):
                jumps.append(Jump(line, condition, section=name))
    if not jumps and condition is not None:
        jumps.extend(Jump(line, condition, section=anchor) for anchor in anchors)
    return jumps


def states_end(text: str) -> bool:
    """Whether a sentence *starts* with "stop here" / "escalate …" ("in such a case, escalate" is a branch)."""
    return any(
        _END.match(re.sub(r"^(?:then|now|finally|please|otherwise)[, ]+", "", sentence, flags=re.IGNORECASE))
        for sentence in sentences(text)
    )


def mentions_parallel(text: str) -> bool:
    return bool(_PARALLEL.search(text))


def _interval(text: str) -> float | None:
    every = _EVERY.search(text)
    if every is None:
        return None
    value, unit = float(every.group("n")), every.group("unit").lower()
    if unit.startswith("min"):
        return value * 60
    return value / 1000 if unit.startswith("m") else value


def find_repeat(text: str, line: int) -> Repeat | None:
    match = _REPEAT.search(text)
    if not match:
        return None
    times = _TIMES.search(text)
    interval = _interval(text)
    cond_text = match.group("cond").strip().rstrip(",")
    cond_text = re.split(r",|\bat most\b|\bup to\b|\bevery\b", cond_text)[0].strip()
    condition = Condition(cond_text, line, find_test(cond_text))
    return Repeat(condition, int(times.group("n")) if times else 5, 1.0 if interval is None else interval)
