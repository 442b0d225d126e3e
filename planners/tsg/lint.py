"""``lint_guide``: the defects a reviewer finds in a runbook, with line numbers.

The families follow StepFly's study of real guides: ambiguous steps (conditions nobody
can measure), broken or hard-coded queries (placeholders with no source, thresholds that
contradict the prose, commands cut in half), missing data flow, structure (numbering gaps,
duplicate numbers, unreachable steps) and control flow (jumps to nowhere, branches with no
end, checks with no "what next").
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

from .commands import Command
from .conditions import find_test, sentences
from .steps import Guide, GuideStep

__all__ = ["Finding", "lint_guide"]

Severity = Literal["error", "warning", "note"]

#: Rules measured below 80% precision on the ten gold-annotated guides (docs/tsg.md): their
#: findings are notes, shown by ``tsg lint --notes`` only. A finding must be right most of
#: the time, or people turn lint off.
NOTE_RULES = frozenset({"unquantified-condition", "interactive-command", "no-next-step"})

_COMPARISON = re.compile(r"(>=|<=|>|<|==)\s*(-?\d+(?:\.\d+)?)")
_VALUE_FLAGS = frozenset(
    {"-n", "--namespace", "-l", "--selector", "-c", "--container", "-o", "-f", "--context"}
)
_BARE_PLACEHOLDER = re.compile(r"(?<![\w$/{.-])([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?![\w}])")
_GENERIC = frozenset({"name", "names", "value", "the", "any", "your", "from", "with", "id", "step", "first"})
_GUIDANCE = re.compile(
    r"\b(look for|check|verify|should|expect|make sure|if|output|means|indicat|contain|shows?|confirm|ensure)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    """One defect: ``guide.md:12: error: … [code]``."""

    file: str | None
    line: int
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file or '<guide>'}:{self.line}: {self.severity}: {self.message} [{self.code}]"


class _Linter:
    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.findings: list[Finding] = []
        self.steps = guide.root.walk()
        self.prose = " ".join(s.text for s in self.steps)
        from .plan import build_plan

        self.plan = build_plan("\n".join(guide.lines), guide.source)
        # Shell variables the guide sets itself (NAMESPACE="…", pod=$(…), for pod in …)
        self.assigned = {
            m.group(1)
            for n in self.plan.nodes
            for c in n.commands
            for m in re.finditer(r"(?:^|\n|;)\s*(?:export\s+|for\s+)?([A-Za-z_]\w*)(?:=|\s+in\b)", c.full)
        }
        self.command_lines = {c.line for n in self.plan.nodes for c in n.commands}

    def add(self, line: int, severity: Severity, code: str, message: str) -> None:
        if code in NOTE_RULES:
            severity = "note"
        self.findings.append(Finding(self.guide.source, line, severity, code, message))

    def run(self) -> list[Finding]:
        for step in self.steps:
            self.conditions(step)
            self.jumps(step)
            self.numbering(step)
            self.unreachable(step)
            self.what_next(step)
            for command in step.commands:
                self.command(step, command)
            self.thresholds(step)
        self.placeholders()
        unique = sorted(set(self.findings), key=lambda f: (f.line, f.code, f.message))
        return unique

    def conditions(self, step: GuideStep) -> None:
        conditions = ([step.condition] if step.condition else []) + [
            j.condition for j in step.jumps if j.condition
        ]
        for condition in conditions:
            if condition is not None and condition.test is None:
                self.add(
                    condition.line,
                    "warning",
                    "unquantified-condition",
                    f"condition {condition.text!r} has no measurable threshold or state; "
                    "say what to compare (e.g. 'above 8%', 'status is `Pending`')",
                )
        if step.condition is not None and not _acts(step):
            self.add(
                step.line,
                "warning",
                "branch-without-end",
                f"branch {step.title!r} says when, but not what to do (no command, instruction or jump)",
            )

    def jumps(self, step: GuideStep) -> None:
        parent = next((p for p in self.steps if step in p.children), None)
        siblings = parent.children if parent else []
        numbers = {s.number for s in siblings if s.number is not None}
        numbers |= {n.number for n in self.plan.nodes if n.number is not None}  # "## Step 4 - …" anywhere
        for jump in step.jumps:
            if jump.step is not None and jump.step not in numbers:
                self.add(
                    jump.line,
                    "error",
                    "unknown-jump-target",
                    f"jumps to step {jump.step}, which does not exist here",
                )
            if jump.section is not None:
                wanted = jump.section.lower()
                if not any(s.anchor == wanted or s.title.lower().rstrip(":") == wanted for s in self.steps):
                    self.add(
                        jump.line,
                        "error",
                        "unknown-jump-target",
                        f"refers to section {jump.section!r}, which is not in this guide",
                    )
            if jump.back and jump.step is not None and jump.max_iterations is None:
                self.add(
                    jump.line,
                    "warning",
                    "back-jump",
                    f"jumps back to step {jump.step} with no bound: it runs at most 3 times; say 'at most N times'",
                )

    def numbering(self, step: GuideStep) -> None:
        groups: dict[str, list[GuideStep]] = {}
        for child in step.children:
            if child.marker.isdigit() and child.kind in ("labelled", "section", "item"):
                groups.setdefault(child.kind, []).append(child)
        for group in groups.values():
            markers = [int(c.marker) for c in group]
            if len(group) > 1 and len(set(markers)) == 1 and group[0].kind == "item":
                continue  # "1." on every item: Markdown numbers them itself
            seen: dict[int, GuideStep] = {}
            for child in group:
                number = int(child.marker)
                if number in seen:
                    self.add(
                        child.line,
                        "error",
                        "duplicate-step-number",
                        f"step {number} appears twice (also line {seen[number].line})",
                    )
                seen[number] = child
            for previous, current in itertools.pairwise(group):
                if int(current.marker) > int(previous.marker) + 1:
                    self.add(
                        current.line,
                        "warning",
                        "numbering-gap",
                        f"step {previous.marker} is followed by step {current.marker}",
                    )

    def unreachable(self, step: GuideStep) -> None:
        for index, child in enumerate(step.children):
            # Only a sequence of numbered steps has an "after"; sibling sections are separate topics.
            if child.kind == "section" or child.number is None:
                continue
            if child.ends and child.condition is None and not child.jumps:
                targets = {j.step for s in step.children[:index] for j in s.jumps if j.step is not None}
                for later in step.children[index + 1 :]:
                    if later.number in targets:
                        break  # a jump from before the end leads here
                    if later.condition is None:
                        self.add(
                            later.line,
                            "error",
                            "unreachable-step",
                            f"step {later.title!r} comes after {child.title!r} (line {child.line}), which ends the guide",
                        )
                break

    def what_next(self, step: GuideStep) -> None:
        if not step.commands or step.children or step.commands[-1].effect != "read":
            return
        last = max(c.line for c in step.commands)
        after = [p for p in step.paragraphs if p.line > last]
        before = [p for p in step.paragraphs if p.line <= last]
        guided = any(_GUIDANCE.search(p.text) for p in after + before)
        if not guided and not step.jumps:
            self.add(
                last,
                "warning",
                "no-next-step",
                f"nothing says what to look for in the output of `{_short(step.commands[-1].text)}` "
                "or what to do next",
            )

    def command(self, step: GuideStep, command: Command) -> None:
        words = command.text.split()
        kube = bool(words) and words[0] in ("kubectl", "oc") and "|" not in command.text
        if command.language == "shell" and kube and words[-1] in _VALUE_FLAGS:
            self.add(
                command.line,
                "warning",
                "broken-command",
                f"`{command.text[:60]}` ends with {words[-1]}, which needs a value: is the command "
                "split over two lines without a trailing backslash?",
            )
        for match in _BARE_PLACEHOLDER.finditer(re.sub(r"'[^']*'|\"[^\"]*\"", "", command.text)):
            self.add(
                command.line,
                "warning",
                "hard-coded-placeholder",
                f"{match.group(1)} looks like a value to fill in but is not marked; write ${match.group(1)}",
            )
        if command.effect == "session":
            self.add(
                command.line,
                "warning",
                "interactive-command",
                f"`{command.text[:60]}` does not finish on its own or needs a person "
                f"({command.classification.reason}); the runner hands it to the operator",
            )

    def thresholds(self, step: GuideStep) -> None:
        prose = [(p.line, find_test(s)) for p in step.paragraphs for s in sentences(p.text)]
        stated = [(line, test) for line, test in prose if test is not None and test.kind == "threshold"]
        for command in step.commands:
            if command.language in ("shell",):
                continue
            if stated and not _COMPARISON.search(command.text):
                line, test = stated[0]
                assert test is not None
                self.add(
                    command.line,
                    "warning",
                    "threshold-not-in-query",
                    f"the text (line {line}) gives a threshold ({test.op} {test.value:g}{test.unit}) "
                    "but the query does not compare against it; the reader must do it by eye",
                )
            for match in _COMPARISON.finditer(command.text):
                value = float(match.group(2))
                for line, test in stated:
                    assert test is not None and isinstance(test.value, float)
                    same = {test.value, test.value / 100} if test.unit == "%" else {test.value}
                    if test.unit == "ms":
                        same.add(test.value / 1000)
                    if value not in same:
                        self.add(
                            command.line,
                            "error",
                            "threshold-mismatch",
                            f"the query compares {match.group(1)} {match.group(2)} but the text (line {line}) "
                            f"says {test.op} {test.value:g}{test.unit}",
                        )

    def placeholders(self) -> None:
        front = self.guide.front_matter.get("inputs")
        defaults = set(front) if isinstance(front, dict) else set()
        reported: set[str] = set()
        for step in self.steps:
            for command in step.commands:
                for placeholder in command.placeholders:
                    name = placeholder.name
                    if name in reported or name in defaults or any(name in s.notes for s in self.steps):
                        continue
                    if name in self.assigned or command.line not in self.command_lines:
                        continue  # set by an earlier command, or in sample output
                    bare = placeholder.raw.strip("${}<>")
                    if re.search(rf"(?<![\w-]){re.escape(bare)}(?![\w-])", self.prose):
                        continue  # the prose explains it ("replace the $DAEMONPOD variable with …")
                    words = [
                        w for w in re.split(r"[-_\s]+", bare.lower()) if len(w) > 2 and w not in _GENERIC
                    ]
                    if words and any(re.search(rf"\b{re.escape(w)}s?\b", self.prose, re.I) for w in words):
                        continue  # "<webhook_name>" after "see exactly what webhook …": the guide sources it
                    reported.add(name)
                    self.add(
                        command.line,
                        "error",
                        "unsourced-placeholder",
                        f"{placeholder.raw} must be filled in, but the guide never says where its value comes "
                        f"from; explain it, or pass --set {name}=… / --incident",
                    )


def _short(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 60 else text[:59] + "…"


def _acts(step: GuideStep) -> bool:
    return any(s.commands or s.imperative or s.jumps or s.ends for s in step.walk()) or bool(
        step.text.strip()
    )


def lint_guide(guide: Guide) -> list[Finding]:
    """Every finding, in line order (errors and warnings; ``tsg lint`` exits 1 on errors)."""
    return _Linter(guide).run()
