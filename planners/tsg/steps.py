"""The guide as steps: ``parse_guide`` turns a Markdown runbook into a tree of ``GuideStep``.

Steps come from the structure an SRE already wrote: headings (each section is a step
whose sub-sections are sub-steps), numbered list items, "Step N:" paragraphs, and bullet
items that carry a command, a condition or an imperative ("Check …", "Make sure …").
Sections that only explain (Meaning, Impact, Further info …) are not steps.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .commands import Command, commands_in_block, inline_command, make_command, placeholder_notes
from .conditions import (
    Condition,
    Jump,
    Repeat,
    condition_clause,
    find_jumps,
    find_repeat,
    find_test,
    is_otherwise,
    mentions_parallel,
    sentences,
    states_end,
)
from .errors import GuideError
from .markdown import CodeBlock, Document, FrontMatterError, ListBlock, Paragraph, Section, parse_markdown

__all__ = ["Guide", "GuideStep", "parse_guide"]

_INFORMATIONAL = re.compile(
    r"^(meaning|impact|overview|description|summary|background|further info\w*|related( links)?|references?|"
    r"see also|full context|context|about|prerequisites|architecture|resources|links|notes?)\b",
    re.IGNORECASE,
)
_MITIGATION = re.compile(r"^(mitigation|remediation|resolution|fix|recovery|workaround)s?\b", re.IGNORECASE)
_LABELLED = re.compile(r"^step\s+(?P<n>\d+)\s*[:.)-]?\s*(?P<title>.*)$", re.IGNORECASE)
_NUMBERED_TITLE = re.compile(
    r"^(?:step\s+(?P<s>\d+)\s*[.):\-–—]?|(?P<n>\d+)[.):])\s*(?P<title>.+)$", re.IGNORECASE
)
_IMPERATIVE = re.compile(
    r"^(?:(?:first|then|next|also|finally|now),?\s+)?(?:please\s+)?"
    r"(check|verify|make sure|ensure|look|inspect|investigate|review|confirm|navigate|take a look|run|"
    r"restart|delete|gather|collect|test|validate|find|open|contact|escalate|report|disable|try|compare|"
    r"query|examine|identify|set|create|change|increase|decrease|scale|remove|update|upgrade|rollback|"
    r"roll back|drain|cordon|apply|login|log in|switch|list|search|wait)\b",
    re.IGNORECASE,
)
_REFERS_BACK = re.compile(
    r"\b(the output (?:of|from)|from the (?:list|output) above|output above|command above|results? above|"
    r"previous (?:step|command|output)|from step \d+)\b",
    re.IGNORECASE,
)
_BRANCHING = re.compile(
    r"\b(depending on|one of the following|based on (?:the|its) (?:state|status))\b", re.I
)
_INTERPRETS = re.compile(r"\b(results?|output|returns?|get back)\b", re.IGNORECASE)
_LOKI = re.compile(r"\b(loki|logql)\b", re.IGNORECASE)


@dataclass(eq=False)
class GuideStep:
    """One step of a guide (a section, list item or "Step N:" paragraph) with its sub-steps."""

    title: str
    line: int
    kind: str  # guide, section, item, labelled
    number: int | None = None
    marker: str = ""  # the literal number written in the guide ("1" for auto-numbered lists)
    anchor: str = ""
    paragraphs: list[Paragraph] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    children: list[GuideStep] = field(default_factory=list)
    condition: Condition | None = None
    otherwise: bool = False
    jumps: list[Jump] = field(default_factory=list)
    ends: bool = False
    repeat: Repeat | None = None
    parallel: bool = False
    refers_back: bool = False
    branching: bool = False
    mitigation: bool = False
    branch_links: list[tuple[str, str, int]] = field(default_factory=list)  # (anchor, text, line)
    notes: dict[str, str] = field(default_factory=dict)
    sample_blocks: list[int] = field(default_factory=list)  # lines of code blocks with no command

    @property
    def text(self) -> str:
        return " ".join(p.text for p in self.paragraphs)

    @property
    def imperative(self) -> bool:
        if self.kind == "section" and _IMPERATIVE.match(self.title):
            return True
        return any(_IMPERATIVE.match(s) for p in self.paragraphs for s in sentences(p.text))

    def walk(self) -> list[GuideStep]:
        result = [self]
        for child in self.children:
            result.extend(child.walk())
        return result

    def effect(self) -> str:
        """``write`` if the step or a sub-step may change anything (or is a mitigation), else ``read``."""
        for step in self.walk():
            if step.mitigation or any(c.effect != "read" for c in step.commands):
                return "write"
        return "read"


@dataclass
class Guide:
    """A parsed guide: its title, step tree, front matter and source."""

    title: str
    root: GuideStep
    source: str | None
    front_matter: dict[str, object]
    lines: list[str]

    def steps(self) -> list[GuideStep]:
        return self.root.walk()[1:]

    def commands(self) -> list[Command]:
        return [c for s in self.root.walk() for c in s.commands]


def _first_sentence(text: str, limit: int = 70) -> str:
    first = sentences(text)[0] if text else ""
    first = first.replace("`", "").rstrip(":").strip()
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


class _Builder:
    def __init__(self, source: str | None) -> None:
        self.source = source

    def section(self, section: Section, kind: str = "section") -> GuideStep:
        number = None
        title = section.title
        numbered = _NUMBERED_TITLE.match(title)
        if numbered and kind == "section":
            number, title = int(numbered.group("s") or numbered.group("n")), numbered.group("title")
        step = GuideStep(
            title, section.line, kind, number=number, marker=str(number or ""), anchor=section.anchor
        )
        step.mitigation = bool(_MITIGATION.search(section.title))
        self.fill(step, section.blocks)
        for labelled in step.children:
            self.analyse(labelled)
        for sub in section.children:
            labels = any(isinstance(b, Paragraph) and _LABELLED.match(b.text) for b in sub.blocks)
            if _INFORMATIONAL.match(sub.title) and not labels:  # "## Description" + "**Step 1: …**"
                continue
            child = self.section(sub)
            step.children.append(child)
        self.analyse(step)
        return step

    def fill(self, step: GuideStep, blocks: list[Paragraph | CodeBlock | ListBlock]) -> None:
        current = step
        for block in blocks:
            if isinstance(block, Paragraph):
                labelled = _LABELLED.match(block.text)
                if labelled and step.kind in ("section", "guide"):
                    title = labelled.group("title").strip(" :") or f"Step {labelled.group('n')}"
                    current = GuideStep(
                        _first_sentence(title),
                        block.line,
                        "labelled",
                        int(labelled.group("n")),
                        labelled.group("n"),
                    )
                    step.children.append(current)
                    rest = labelled.group("title")
                    current.paragraphs.append(Paragraph(block.line, rest, block.codes, block.links))
                    continue
                current.paragraphs.append(block)
                self.inline_commands(current, block)
            elif isinstance(block, CodeBlock):
                found = commands_in_block(block.language, block.text, block.line)
                current.commands.extend(found)
                current.notes.update(placeholder_notes(block.text))
                if not found and block.text.strip():
                    current.sample_blocks.append(block.line)
            else:
                self.list_block(current, block)

    def inline_commands(self, step: GuideStep, paragraph: Paragraph) -> None:
        for code in paragraph.codes:
            command = inline_command(code)
            if command is None and code.strip().startswith("{") and _LOKI.search(paragraph.text):
                command = make_command(code, "logql", paragraph.line)
            if command is not None:
                command.line = paragraph.line
                step.commands.append(command)

    def list_block(self, step: GuideStep, block: ListBlock) -> None:
        internal = [
            (p.links[0], p.line)
            for item in block.items
            for p in item.blocks[:1]
            if isinstance(p, Paragraph) and len(p.links) == 1 and p.links[0].href.startswith("#")
        ]
        if internal and len(internal) == len(block.items) and len(block.items) > 1:
            step.branch_links.extend((link.href[1:], link.text, line) for link, line in internal)
            return
        markers = [item.marker for item in block.items]
        auto = len(set(markers)) == 1 and len(markers) > 1  # "1." on every item: Markdown numbers them
        for index, item in enumerate(block.items):
            first = next((b for b in item.blocks if isinstance(b, Paragraph)), None)
            title = _first_sentence(first.text) if first else f"item {index + 1}"
            number = None
            if block.ordered:
                number = index + 1 if auto or not item.marker.isdigit() else int(item.marker)
            child = GuideStep(title, item.line, "item", number=number, marker=item.marker)
            self.fill(child, item.blocks)
            self.analyse(child)
            actionable = (
                block.ordered
                or child.commands
                or child.children
                or child.condition is not None
                or child.jumps
                or child.imperative
            )
            if actionable:
                step.children.append(child)
            else:
                step.paragraphs.extend(child.paragraphs)

    @staticmethod
    def gates(step: GuideStep, sentence: str, condition: Condition) -> bool:
        """Whether an opening "If …" sentence decides if the step runs at all.

        "When a node pivots, …" usually explains, so "when" gates only with a measurable
        test; "If you get no results, that's good" interprets the step's own output.
        """
        if sentence.lower().startswith("when") and condition.test is None:
            return False
        return not (step.commands and _INTERPRETS.search(condition.text))

    def analyse(self, step: GuideStep) -> None:
        """Control flow stated in the step's own words."""
        title_clause = condition_clause(step.title, step.line) if step.kind == "section" else None
        if title_clause:
            step.condition = title_clause[0]
        for index, paragraph in enumerate(step.paragraphs):
            anchors = [link.href[1:] for link in paragraph.links if link.href.startswith("#")]
            for position, sentence in enumerate(sentences(paragraph.text)):
                jumps = find_jumps(sentence, paragraph.line, anchors)
                step.jumps.extend(jumps)
                first = index == 0 and position == 0
                if first and is_otherwise(sentence):
                    step.otherwise = True
                if first and not jumps and step.condition is None:
                    clause = condition_clause(sentence, paragraph.line)
                    if clause and self.gates(step, sentence, clause[0]):
                        step.condition = clause[0]
                if step.repeat is None:
                    step.repeat = find_repeat(sentence, paragraph.line)
        text = step.text
        step.ends = any(states_end(p.text) for p in step.paragraphs) and not step.children
        step.parallel = mentions_parallel(text)
        step.refers_back = bool(_REFERS_BACK.search(text))
        step.branching = bool(_BRANCHING.search(text))


def _branch_families(step: GuideStep) -> None:
    """Sibling sections that are alternatives ("My pod stays pending" / "… waiting") become branches."""
    # Imperative titles ("Check the load", "Check the error rate") are checks, not alternatives.
    sections = [
        c
        for c in step.children
        if c.kind == "section" and c.condition is None and not _IMPERATIVE.match(c.title)
    ]
    prefixes: dict[str, list[GuideStep]] = {}
    for child in sections:
        words = child.title.split()
        if len(words) >= 3:
            prefixes.setdefault(" ".join(words[:2]).lower(), []).append(child)
    family = [c for group in prefixes.values() if len(group) >= 2 for c in group]
    if step.branching:
        family = sections
    for child in family:
        first = child.paragraphs[0] if child.paragraphs else None
        clause = condition_clause(sentences(first.text)[0], first.line) if first and first.text else None
        child.condition = clause[0] if clause else Condition(child.title, child.line, find_test(child.title))
    for child in step.children:
        _branch_families(child)


def _triage_links(root: GuideStep) -> None:
    """A list of links to sections ("Is it your Pods, your RC or your Service?") branches to them."""
    by_anchor = {s.anchor: s for s in root.walk() if s.anchor}
    for step in root.walk():
        for anchor, text, line in step.branch_links:
            target = by_anchor.get(anchor)
            if target is not None and target.condition is None:
                target.condition = Condition(f"the problem is: {text}", line, None)


def parse_guide(text: str, source: str | os.PathLike[str] | None = None) -> Guide:
    """Parse a Markdown runbook into steps; ``GuideError`` (with file and line) if it has none."""
    name = os.fspath(source) if source is not None else None
    if "\x00" in text:
        raise GuideError(name, None, "this is not a text file (it contains NUL bytes)")
    try:
        document: Document = parse_markdown(text)
    except FrontMatterError as exc:
        raise GuideError(name, exc.line, str(exc)) from None
    builder = _Builder(name)
    root = builder.section(document.root, kind="guide")
    title = document.root.title or next((c.title for c in root.children), "") or "guide"
    if len(root.children) == 1 and not root.commands and root.children[0].kind == "section":
        # The usual "# AlertName" heading wrapping everything: its sections are the steps.
        only = root.children[0]
        title = document.root.title or only.title
        root.children = only.children
        root.paragraphs.extend(only.paragraphs)
        root.commands.extend(only.commands)
        root.notes.update(only.notes)
    _branch_families(root)
    _triage_links(root)
    guide = Guide(title, root, name, dict(document.front_matter), document.lines)
    if not any(s.commands or s.imperative or s.condition for s in root.walk()):
        raise GuideError(
            name,
            1,
            "no steps found: no commands, numbered steps or instructions",
            hint="write steps as a numbered list or headings, with commands in ```shell blocks",
        )
    return guide


def load_guide(path: str | os.PathLike[str]) -> Guide:
    """Read and parse a guide file (``GuideError`` if it cannot be read or has no steps)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise GuideError(name, None, f"cannot read the guide: {reason}") from None
    return parse_guide(text, name)
