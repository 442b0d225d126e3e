"""The author's control flow: a guide becomes a plan DAG of steps, edges, conditions and gates.

This is the deterministic reading of a guide (no LLM), written to the annotation rules of
the gold set in ``tests/planners/tsg/data/tsg-gold/GUIDELINES.md``:

* **Steps** are what the author presents as steps: numbered items, ``Step N`` headings and
  paragraphs (``## Step 3 - Title``, ``### 2. Title``, ``**Step 3:**``), headings whose body
  is one check or action, and bullets of an explicit list of checks, actions or
  alternatives. A heading with child steps is a container (its own commands or choices
  before them are one extra step). Background (Meaning, Impact, Symptoms, Cause …) is not a
  step. A tail that the author makes conditional on the step's own check ("if not, run …",
  "If it returned errors, open an issue") and that mutates or leaves the flow is a step.
* **Edges** follow the author: steps are a chain unless the guide says otherwise. Parallel
  only where the author says so ("in parallel", "check the following", "the following two
  approaches"); alternatives (``Option 1/2``, "one of the following methods", ``For …``
  headings) and mitigation items that each start with a condition are conditional branches;
  a step with an entry condition gets a conditional edge and the step before it an
  "otherwise" edge past it; exits ("escalate", "open an issue", another guide) go to
  ``end``; "repeat … until" and "go back to step N" are loop edges.
* **Gates**: every remedy step names the check whose outcome the author conditions it on.

``Plan.as_plandag()`` is StepFly's PlanDAG JSON extended with ``lines``, ``kind``,
``commands`` (``line``, ``text``, ``mutating``, ``where``) and ``gates``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .conditions import _SECTION_JUMP, Repeat, find_jumps, find_repeat, is_otherwise, states_end
from .doc import Blk, Sec, Sentence, parse_doc
from .guide_commands import _PROMPT, _PROMQL_SHAPE, GuideCommand, _plausible, classify_text, find_commands
from .markdown import slugify

__all__ = ["Plan", "PlanEdge", "PlanError", "PlanNode", "build_plan", "plan_from_plandag"]

START, END = "start", "end"
_OTHERWISE_PREFIX = "otherwise (not: "

_INFORMATIONAL = re.compile(
    r"^(?:meaning|impact|summary|overview|background|prerequisites?|requirements|symptoms?|reasons?|"
    r"causes?\b|root cause|applicable versions?|implications|where can i find|find out more|more information|"
    r"further (?:info|information|reading)|references?|see also|related|additional (?:resources|information)|"
    r"description|about|architecture|context|notes?|links|glossary|terminology|how it works|what'?s next|"
    r"before you begin|introduction|scope|audience|dashboards?|alert rules?|severity|contacts?|owners?)\b",
    re.IGNORECASE,
)
_INTERPRETS = re.compile(
    r"^(?:common (?:errors|issues|problems|failures|messages)|errors|example output|sample output|output|"
    r"interpreting (?:the )?(?:output|results?)|what to look for|expected output|examples?:?$)",
    re.IGNORECASE,
)
_VERBS = (
    r"check|verify|validate|make|ensure|look|inspect|investigate|review|confirm|find|get|run|use|start|stop|"
    r"restart|delete|remove|scale|attach|detach|open|ssh|login|log|contact|escalate|resolve|drain|bring|"
    r"wait|repeat|change|set|apply|patch|create|count|search|identify|troubleshoot|fix|upgrade|install|"
    r"enable|disable|go|follow|try|query|compare|determine|describe|list|type|execute|navigate|back|backup|"
    r"collect|gather|examine|test|rerun|re-run|edit|update|add|configure|do|perform|ask|page|notify|file|"
    r"monitor|watch|keep|record|cordon|uncordon|evict|roll|rollback|revert|increase|decrease|reduce|free|"
    r"clean|purge|rotate|renew|recreate|reboot|kill|terminate|mount|unmount|connect|switch|select|click|"
    r"choose|copy|download|upload|trigger|rebuild|redeploy|deploy|rerun|retry|silence|acknowledge|refresh|"
    r"sign|access|print|call|measure|analy[sz]e|debug|diagnose|locate|note|read|see|refer|consult|start|"
    r"retrieve|obtain|extract|fetch|consolidate|summari[sz]e|document|report|write|recommend|prepare|plan|"
    r"pick|decide|take|poll|sample|let|allow|give|raise|lower|move|transfer|swap"
)
_VERBS_LATER = (
    r"run|restart|delete|remove|set|change|patch|scale|drain|stop|start|apply|open|escalate|contact|upgrade|"
    r"recreate|kill|edit|add|update|increase|decrease|reboot|check|use|fix|cancel|terminate|lower|raise"
)
_IMPERATIVE = re.compile(
    rf"^(?:(?:first(?: of all)?|then|next|also|finally|now|second|third|afterwards|optionally),?\s+)?"
    rf"(?:please\s+)?(?:{_VERBS})\b",
    re.IGNORECASE,
)
_ADVICE = re.compile(
    r"\b(?:you (?:can|should|must|need to|will need to|have to|might want to)|it'?s advised|is advised|"
    r"is recommended|we (?:highly )?(?:suggest|recommend)|make sure|escalate|contact)\b",
    re.IGNORECASE,
)
_COND_START = re.compile(
    r"^(?:>\s*)?(?:note:\s*)?(?:(?:if|whenever|in case|unless|otherwise|else|only if|"
    r"when(?=[^.]*\b(?:you (?:can|should|must|need|may|might)|we (?:can|should)|try|please)\b)"
    r"(?!\s+(?:we|you)\s+(?:run|look|describe|use|get)\b)"
    # "When the reason is X, give the job more time": a clause, a comma, then an order.
    rf"|when(?=[^.]{{3,160}}?,\s*(?:then\s+)?(?:{_VERBS}|give|raise|lower|move)\b)"
    r"(?!\s+(?:we|you)\s+(?:run|look|describe|use|get)\b))\b|or,|or you can\b)",
    re.IGNORECASE,
)
_SUMMARY_AFTER = re.compile(
    r"\bnone of the above\b|\b(?:the above|these|previous|above) (?:troubleshooting )?steps "
    r"(?:do not|don't|did not|didn't|fail to|cannot|can't) (?:fix|solve|resolve|help)",
    re.I,
)
_STEP_RANGE = re.compile(
    r"\bsteps?\s+(\d+)(?:\s*,\s*\d+)*\s*,?\s*(?:through|to|-|–|and)\s*(?:step\s+)?(\d+)\b[^.]*\b(?:in parallel|at the same time|"
    r"simultaneously|in any order)|\b(?:in parallel|simultaneously)\b[^.]*\bsteps?\s+(\d+)\s*(?:through|to|-|–)\s*"
    r"(?:step\s+)?(\d+)\b",
    re.I,
)
_BARE_STOP = re.compile(r"\b(?:stop here|you are done|no further action|nothing (?:else )?to do)\b", re.I)
_EITHER_WAY = re.compile(
    r"^(?:in (?:both|either|any) cases?|either way|whatever the (?:result|outcome)|regardless)\b", re.I
)
_SHOWS_OUTPUT = re.compile(
    r"^(?:example|sample|expected) output\b|\b(?:you should see|output (?:like|similar))\b", re.I
)
_BACK_TO_ABOVE = re.compile(
    r"\b(?:same|previous)\b[^.]{0,40}\b(?:diagnos\w*|checks?|steps?|approaches|queries|commands)\b[^.]{0,40}"
    r"\babove\b|\b(?:repeat|re-?run|redo)\s+the\s+(?:\w+\s+)?(?:checks?|steps?|diagnos\w*)\s+above\b",
    re.IGNORECASE,
)
_ONLY = re.compile(
    r"\bonly (?:use|applies|apply|do|run|needed|necessary|relevant)\b.*\b(?:if|when|to|for)\b|"
    r"\bapplies only\b|\bonly for\b",
    re.IGNORECASE,
)
_MID_IF_ACTION = re.compile(
    r"\b(?:and|,)\s+if\b.*\b(?:you can|you should|try)\b|^(?:you can|you may|you could|try)\b[^.]*\bif\b",
    re.IGNORECASE,
)
_EXIT = re.compile(
    r"\b(?:stop here|escalate|open (?:a |an )?(?:support )?(?:issue|ticket|case|bug)|contact (?:the )?[\w\s/-]{0,40}?"
    r"(?:support|team|owner|on-?call)|page the on-?call|file (?:a |an )?(?:issue|bug|ticket)|you are done|"
    r"no further action|is described in(?! the following| below)|see the [\w\s-]{0,40}guide|(?:refer|go) to the [\w\s-]{0,40}guide|"
    r"troubleshooting guide|(?:see|follow|use|refer to) the [\w\s-]{0,40}(?:runbook|playbook)|raise (?:a|an) (?:issue|ticket)|(?:is|this is) (?:a|the) (?:potential |likely )?"
    r"(?:resolution|root cause|final outcome)|(?:is|this is) the end of (?:the |this )?(?:tsg|guide|runbook|procedure))\b",
    re.IGNORECASE,
)
_SUCCESS = re.compile(
    r"\b(?:that means (?:that )?[\w\s-]{0,40}success|successfully (?:issued|completed|resolved)|"
    r"(?:is|are) (?:now )?resolved|you are done|nothing (?:else )?to do|no action (?:is )?(?:needed|required))\b",
    re.IGNORECASE,
)
# "Once X, there is nothing else to do", "The issue is resolved when X": a conditional exit
_SUCCESS_WHEN = re.compile(
    r"^(?:once|when|as soon as)\b(?:[^.;]|\.\d)*\b(?:nothing (?:else )?to do|no further action|resolved|you are done)\b|"
    r"\b(?:is|are) (?:now )?resolved (?:when|once|if|as soon as)\b",
    re.IGNORECASE,
)
_REMEDY_WORDS = re.compile(
    r"\b(?:try (?:setting|adding|changing|removing|restarting|deleting|to)|setting|set the|change|changing|"
    r"remove|removing|delete|deleting|restart|restarting|recreate|re-create|patch|patching|scale|scaling|"
    r"upgrade|reinstall|drop|kill|apply|roll ?back|revert|is (?:likely )?required|increase|decrease|"
    r"free up|clean up|purge|force delete|reboot|rebuild|redeploy|fix|cancel|terminate|you (?:might|may) want to (?:change|set|use|"
    r"remove|add|switch))\b",
    re.IGNORECASE,
)
_DIRECTIVE = re.compile(
    r"\b(?:you (?:can|should|must|need to|may|might|will need to|have to)|try|we can|please|make sure|"
    r"is (?:likely )?required|is needed|needs to be)\b|[,:]\s*(?:then\s+)?(?:" + _VERBS_LATER + r")\b",
    re.IGNORECASE,
)
_REMEDY_TITLE = re.compile(
    r"^(?:mitigation|mitigations|remediation|resolution|solution|solutions|fix|fixes|workaround|recovery|"
    r"repair|resolve)\b",
    re.IGNORECASE,
)
_MANUAL = re.compile(
    r"^(?:(?:first|then|now),?\s+)?(?:ssh|open a (?:shell|terminal|remote shell)|log ?in|login|escalate|contact|"
    r"open an? (?:issue|ticket|case)|wait|watch|keep an eye|ask|page|notify|read|see|refer|consult|resolve any|"
    r"troubleshoot)\b",
    re.IGNORECASE,
)
_REMEDY_START = re.compile(
    r"^(?:(?:first|then|now|finally),?\s+)?(?:(?:on|in|from) [^,]{1,60},\s*)?(?:please\s+)?"
    r"(?:scale|attach|detach|restart|delete|remove|patch|set|change|make the change|recreate|stop|start|drain|"
    r"bring|repair|fix|upgrade|apply|roll|revert|increase|decrease|free|clean|purge|rotate|renew|reboot|"
    r"kill|terminate|cordon|uncordon|evict|deploy|redeploy|rebuild|update|edit|add|configure|enable|disable|"
    r"install|mount|unmount|backup and|back up and|force)\b",
    re.IGNORECASE,
)
_PARALLEL = re.compile(
    r"\b(?:in parallel|in any order|at the same time|simultaneously|independent(?:ly)?|"
    r"(?:the )?following (?:two|three|four|\d+) (?:approaches|ways|checks|methods)|"
    r"(?:check|verify|confirm|review|ensure) (?:each of )?the following|each of the following|"
    r"make sure to check the following|any of the following)\b",
    re.IGNORECASE,
)
_ALTERNATIVE = re.compile(
    r"\b(?:one of the following|either of the following|following (?:methods|options|alternatives)|"
    r"use one of|choose one|one of these)\b",
    re.IGNORECASE,
)
_ALT_TITLE = re.compile(r"^(?:option|method|approach|alternative|way|scenario|case)\s*\w{0,3}\b", re.I)
_COND_TITLE = re.compile(r"^(?:if|when|in case|for|on|using|with)\b", re.I)
_STEP_TITLE = re.compile(r"^(?:step\s*(?P<a>\d+)\b\s*[:.)-]?|(?P<b>\d+)[.)]\s+)", re.I)
_STEP_PARA = re.compile(r"^\s*(?:\*\*|__)?step\s+(?P<n>\d+)\s*(?:\*\*|__)?\s*[:.)-]", re.I)
_REPEAT = re.compile(
    r"\brepeat (?:the |these |all )?(?:below |following |above |previous )?(?:steps?|process|procedure)\b"
    r".*\buntil\b|\brepeat\b.*\b(?:below|following) steps\b",
    re.I,
)
_JUMP = re.compile(
    r"\b(?:go|jump|skip|continue|proceed|return|move on|loop)\s+(?P<back>back\s+)?(?:on\s+)?(?:to|with)\s+"
    r"step\s+(?P<n>\d+)",
    re.I,
)
# a jump that moves the reader (the step's way onwards), unlike "see X" / "refer to X" (a reference)
_MOVE_VERB = re.compile(r"(?:go|jump|skip|continue|proceed|move on)\b", re.I)
_GO_BACK = re.compile(r"\b(?:go back to|repeat from|start over from|return to)\s+step\s+(?P<n>\d+)", re.I)
_CHOICE = re.compile(
    r"\b(?:cannot be used for|can ?not be used|is not (?:necessary|needed)|are (?:likely )?not necessary|"
    r"depends? on (?:what|whether|which)|if possible|is not possible|out of date|instead use|"
    r"see the (?:more )?[\w\s]{0,30}(?:procedure|section) below)\b",
    re.I,
)
_ANNOUNCE = re.compile(
    r"(?:following|these|below|next) (?:steps|sections|instructions|commands)?\s*:?\s*$|:\s*$", re.I
)


@dataclass
class PlanNode:
    id: str
    first: int
    last: int
    title: str
    kind: str = "check"
    number: int | None = None
    labelled: bool = False  # the number is a heading's or a "Step N" label's, not a list item's
    commands: list[GuideCommand] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    cond: str | None = None  # entry condition
    exit: bool = False  # leaves the flow: its edge goes to end
    exit_cond: str | None = None  # a conditional exit in the middle of the step
    forward_cond: str | None = None  # "If … , continue with the following steps"
    loop_header: str | None = None  # "repeat the steps below until …"
    repeat: Repeat | None = None  # "repeat until …" on this step alone
    bounds: dict[int, tuple[int | None, float | None]] = field(default_factory=dict)  # jump target → bounds
    jumps: list[tuple[int, str | None, bool]] = field(default_factory=list)  # (step number, condition, back)
    section_jumps: list[tuple[str, str | None]] = field(default_factory=list)  # (section title, condition)
    moves_to: set[str] = field(default_factory=set)  # section names of "go/continue to X" (not "see X")
    parallel_range: tuple[int, int] | None = None  # "start Steps 2 through 10 in parallel"
    blocks: list[Blk] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclass
class PlanEdge:
    src: str
    dst: str
    condition: str | None = None
    loop: bool = False
    max_iterations: int | None = None  # a loop's bound ("at most 4 times")
    interval_s: float | None = None  # a loop's pacing ("every 10 seconds")

    @property
    def negated(self) -> bool:
        """An "otherwise" edge: taken when ``base`` does not hold."""
        return bool(self.condition) and str(self.condition).startswith(_OTHERWISE_PREFIX)

    @property
    def base(self) -> str | None:
        """The condition as the author states it (the positive one for "otherwise" edges)."""
        if not self.condition:
            return None
        if self.negated:
            inner = self.condition[len(_OTHERWISE_PREFIX) :]
            return inner[:-1] if inner.endswith(")") else inner
        return self.condition


@dataclass
class Gate:
    remedy: str
    requires: str
    condition: str


@dataclass
class _Group:
    mode: str  # seq, par, alt, branches, fork
    items: list[_Unit]
    cond: str | None = None
    title: str = ""
    # "If X, follow these steps:": when X does not hold the rest of the guide is not for this
    # case, so the flow ends instead of moving on past the group.
    otherwise_ends: bool = False
    implicit: bool = False  # a condition the author implies (a Mitigation after a diagnosis)


_Unit = PlanNode | _Group


@dataclass
class Plan:
    """A guide's plan DAG: steps with line ranges and commands, edges with conditions, gates."""

    title: str
    nodes: list[PlanNode]
    edges: list[PlanEdge]
    gates: list[Gate]
    source: str | None = None

    def node(self, node_id: str) -> PlanNode:
        return next(n for n in self.nodes if n.id == node_id)

    def successors(self, node_id: str) -> list[PlanEdge]:
        return [e for e in self.edges if e.src == node_id]

    def predecessors(self, node_id: str) -> list[PlanEdge]:
        return [e for e in self.edges if e.dst == node_id]

    def as_plandag(self) -> dict[str, Any]:
        """StepFly's PlanDAG JSON with provenance (``lines``, ``kind``, ``commands``, ``gates``)."""
        out: list[dict[str, Any]] = [
            {"node": START, "description": "Begin troubleshooting", "input_edges": [], "output_edges": []}
        ]
        for node in self.nodes:
            out.append(
                {
                    "node": node.id,
                    "description": node.title,
                    "lines": [node.first, node.last],
                    "kind": node.kind,
                    "commands": [c.as_dict() for c in node.commands],
                    "input_edges": [],
                    "output_edges": [],
                }
            )
        out.append(
            {"node": END, "description": "End of troubleshooting", "input_edges": [], "output_edges": []}
        )
        by_name = {n["node"]: n for n in out}
        for edge in self.edges:
            name = f"edge_{edge.src}_{edge.dst}"
            entry: dict[str, Any] = {"edge": name, "condition": edge.condition or "none"}
            if edge.loop:
                entry["loop"] = True
                if edge.max_iterations is not None:
                    entry["max_iterations"] = edge.max_iterations
            by_name[edge.src]["output_edges"].append(entry)
            by_name[edge.dst]["input_edges"].append({"edge": name})
        return {
            "guide": self.source or "",
            "title": self.title,
            "nodes": out,
            "gates": [
                {"remedy": g.remedy, "requires": g.requires, "condition": g.condition} for g in self.gates
            ],
        }


# -- reading the author's units --------------------------------------------------------------


def _first_sentence(text: str, limit: int = 90) -> str:
    text = re.sub(r"\s+", " ", text.replace("`", "")).strip().rstrip(":")
    match = re.search(r"(?<=[.!?])\s", text)
    if match:
        text = text[: match.start()]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _imperative(text: str) -> bool:
    text = text.strip().lstrip(">").strip()
    text = re.sub(r"^(?:note:|warning:)\s*", "", text, flags=re.I)
    if _IMPERATIVE.match(text):
        return True
    # "On the web nodes, run …", "As the RPS rises, check …"
    clause = re.match(
        r"^(?:on|in|from|within|inside|as|after|once|before|using|for|with)\b[^,.]{0,80},\s*(.*)", text, re.I
    )
    return bool(clause and _IMPERATIVE.match(clause.group(1)))


def _paras(blocks: list[Blk]) -> list[Blk]:
    found: list[Blk] = []
    for blk in blocks:
        found.extend(b for b in blk.walk() if b.kind == "para")
    return sorted(found, key=lambda b: b.first)


def _sentences_of(blocks: list[Blk]) -> list[Sentence]:
    return [s for p in _paras(blocks) for s in p.sentences]


def _code_lines(blk: Blk) -> list[str]:
    """The lines of a code block that read as commands (prompted lines when it has prompts)."""
    lines = [line.strip() for line in blk.content.splitlines() if line.strip()]
    prompted = [line[m.end() :] for line in lines if (m := _PROMPT.match(line))]
    if prompted:
        return prompted
    if blk.lang in ("yaml", "yml", "json", "text", "txt", "log", "output"):
        return []
    if blk.lang in ("sql", "sqlite", "postgresql", "mysql", "promql", "logql", "kql", "kusto", "plugin-call"):
        return lines
    if not blk.lang and _PROMQL_SHAPE.search(blk.content) and not any(_plausible(x) for x in lines):
        return lines[:1]  # a bare block with a PromQL expression
    return [line for line in lines if _plausible(line)]


_SHELL_BLOCKS = frozenset(
    {"", "shell", "bash", "sh", "zsh", "console", "shell-session", "terminal", "shellscript", "bash-session"}
    | {"azurecli", "azurecli-interactive", "azcli", "azure-cli"}
)
_SQL_BLOCKS = frozenset({"sql", "sqlite", "postgresql", "psql", "mysql", "plpgsql"})


def _promql_only(blk: Blk) -> bool:
    lines = [line.strip() for line in blk.content.splitlines() if line.strip()]
    return not blk.lang and bool(_PROMQL_SHAPE.search(blk.content)) and not any(_plausible(x) for x in lines)


def _has_code(blocks: list[Blk]) -> bool:
    return any(b.kind == "code" and _code_lines(b) for blk in blocks for b in blk.walk())


def _is_condition(sentence: str) -> bool:
    return bool(_COND_START.match(sentence.strip()))


def _condition_text(sentence: str) -> str:
    """The sentence stating a condition, as written (inline code kept: it names the evidence)."""
    text = re.sub(r"^(?:>\s*)?(?:note:\s*)", "", sentence.strip(), flags=re.I)
    text = re.sub(r"\s+", " ", text).strip().rstrip(":")
    return text if len(text) <= 160 else text[:159].rstrip() + "…"


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.nodes: list[PlanNode] = []
        self.unit_blocks: list[tuple[int, list[Blk], str]] = []
        self.parent: dict[str, str] = {}  # split tail → the authored unit it came from

    def trim(self, first: int, last: int) -> int:
        while last > first and not self.lines[last - 1].strip():
            last -= 1
        return last

    # -- nodes ----------------------------------------------------------------------------

    def node(
        self,
        first: int,
        last: int,
        title: str,
        blocks: list[Blk],
        number: int | None = None,
        flow: list[Blk] | None = None,
        labelled: bool = False,
    ) -> _Unit:
        """A step; ``flow``: the blocks whose last sentence may route onwards (not "Common errors")."""
        node = PlanNode(
            f"S{len(self.nodes) + 1}", first, self.trim(first, last), title, number=number, labelled=labelled
        )
        node.blocks = blocks
        node.sentences = _sentences_of(blocks)
        self.nodes.append(node)
        self.unit_blocks.append((len(self.nodes), blocks, title))
        self.analyse(node, _sentences_of(flow) if flow is not None else node.sentences)
        return self.split(node)

    def analyse(self, node: PlanNode, flow: list[Sentence]) -> None:
        sentences = node.sentences
        codes = [b.first for blk in node.blocks for b in blk.walk() if b.kind == "code" and _code_lines(b)]
        before = [s for s in sentences if not codes or s.line < min(codes)]
        head = [s.text for s in before[:2]]  # an entry condition comes before the step's commands
        if codes and head and re.search(r"\b(?:results?|output|returns?|get back|you see)\b", head[0], re.I):
            head = []  # "If you get no results, that's good": it reads the step's own output
        if _COND_TITLE.match(node.title) and re.match(r"^(?:if|when|in case)\b", node.title, re.I):
            node.cond = node.title
        elif (head and _is_condition(head[0])) or (
            head and (_ONLY.search(head[0]) or _MID_IF_ACTION.search(head[0]))
        ):
            node.cond = _condition_text(head[0])
        elif len(head) > 1 and (
            _ONLY.search(head[1]) or (_is_condition(head[1]) and _CHOICE.search(head[0]))
        ):
            node.cond = _condition_text(head[1])
        for sentence in sentences:
            for jump in find_jumps(sentence.text, sentence.line, []):
                if jump.step is not None:
                    node.bounds[jump.step] = (jump.max_iterations, jump.interval_s)
            section = _SECTION_JUMP.search(sentence.text)
            quoted = section is not None and section.group("d") is not None
            if node.repeat is None and not _REPEAT.search(sentence.text) and not quoted:
                node.repeat = find_repeat(sentence.text, sentence.line)
            for match in _JUMP.finditer(sentence.text):
                cond = _jump_condition(sentence.text, match.start())
                node.jumps.append((int(match.group("n")), cond, bool(match.group("back"))))
            for match in _GO_BACK.finditer(sentence.text):
                node.jumps.append((int(match.group("n")), None, True))
            if _is_condition(sentence.text):
                for para in _paras(node.blocks):
                    for _, href, line in para.links:
                        if href.startswith("#") and line == sentence.line:
                            node.section_jumps.append(("#" + href[1:], _condition_text(sentence.text)))
            if section is not None and not _JUMP.search(sentence.text):
                name = (
                    (
                        section.group("a")
                        or section.group("b")
                        or section.group("c")
                        or section.group("d")
                        or ""
                    )
                    .strip()
                    .strip("`*")
                )
                if name and name.lower() not in ("following", "next", "above", "below", "this", "same"):
                    cond = _jump_condition(sentence.text, section.start())
                    until = re.search(r"\buntil\s+([^.;]+)", sentence.text[section.end() :], re.I)
                    if quoted and until is not None and cond is None:  # 'Repeat from "X" until Y': a loop
                        cond = f"repeat until {until.group(1).strip()}"
                    node.section_jumps.append((name, cond))
                    if _MOVE_VERB.match(section.group(0)):
                        node.moves_to.add(name)
        text = node.text
        ranged = _STEP_RANGE.search(text)
        if ranged is not None:
            numbers = [int(g) for g in ranged.groups() if g is not None]
            node.parallel_range = (numbers[0], numbers[1])
        if _REPEAT.search(text) and not _has_code(node.blocks):
            until = re.search(r"\buntil\b\s*(.*)", text, re.I)
            node.loop_header = _first_sentence(until.group(1) if until else text, 100)
        if sentences and not _has_code(node.blocks):
            opening = sentences[0].text
            if _EXIT.search(opening) or (len(sentences) <= 2 and _EXIT.search(text)):
                node.exit = True
        if sentences and states_end(sentences[-1].text) and not _is_condition(sentences[-1].text):
            node.exit = True  # "… Stop here." / "Escalate to the owning team."
        for index, sentence in enumerate(sentences[1:], 1):
            conditional = (
                _is_condition(sentence.text)
                or re.search(r",\s*if\b", sentence.text, re.I)
                or _SUCCESS_WHEN.search(sentence.text)
            )
            following = sentences[index + 1].text if index + 1 < len(sentences) else ""
            leaves = _SUCCESS.search(sentence.text) or (
                _EXIT.search(sentence.text) and not _REMEDY_WORDS.search(sentence.text)
            )
            # "If X, recommend a rollback. This is a potential resolution."
            leaves = leaves or (
                re.match(
                    r"^(?:this|that) is (?:a|the) (?:potential |likely )?(?:resolution|root cause)",
                    following,
                    re.I,
                )
                is not None
            )
            if conditional and leaves and not re.match(r"^otherwise\b", sentence.text, re.I):
                node.exit_cond = _condition_text(sentence.text)
        if flow and len(flow) > 1:
            last = flow[-1].text
            if (
                _is_condition(last)
                and not _JUMP.search(last)
                and not is_otherwise(last)
                and re.search(
                    r"\b(?:following steps|next step|continue|proceed|move on|described in the following|below)\b",
                    last,
                    re.I,
                )
            ):
                node.forward_cond = _condition_text(last)

    def split(self, node: PlanNode) -> _Unit:
        """Conditional tails that mutate or leave the flow become steps of their own."""
        sentences = node.sentences
        tails: list[int] = []
        ends = node.last
        own_check = [b.first for blk in node.blocks for b in blk.walk() if b.kind == "code"]
        # the first sentence can be a tail too when the step's own check (a command) comes before it
        lowest = 0 if own_check and sentences and min(own_check) < sentences[0].line else 1
        for index in range(len(sentences) - 1, lowest - 1, -1):
            sentence = sentences[index]
            if (
                index == len(sentences) - 1
                and index > lowest
                and re.match(r"^otherwise\b", sentence.text, re.I)
                and _is_condition(sentences[index - 1].text)
            ):
                continue  # "If X, contact support. Otherwise, it is resolved.": the tail is both
            if not _is_condition(sentence.text) or sentence.line <= node.first:
                continue
            codes = [
                b
                for blk in node.blocks
                for b in blk.walk()
                if b.kind == "code" and sentence.line < b.first <= ends
            ]
            # "…: stop here." only ends the flow (an edge), it asks for nothing to be done
            worthy = bool(_EXIT.search(_BARE_STOP.sub(" ", sentence.text))) or (
                bool(_REMEDY_WORDS.search(sentence.text)) and bool(_DIRECTIVE.search(sentence.text))
            )
            if not worthy:  # the tail's own commands change something (shell or SQL)
                worthy = any(
                    classify_text(line, "sql" if code.lang in _SQL_BLOCKS else "shell")
                    for code in codes
                    if (code.lang in _SHELL_BLOCKS or code.lang in _SQL_BLOCKS) and not _promql_only(code)
                    for line in _code_lines(code)[:3]
                )
            if not worthy:
                break
            tails.append(index)
            ends = sentence.line - 1
        if not tails:
            return node
        units: list[_Unit] = [node]
        starts = sorted(tails)
        original_last = node.last
        node.last = self.trim(node.first, sentences[starts[0]].line - 1)
        for position, index in enumerate(starts):
            first = sentences[index].line
            last = sentences[starts[position + 1]].line - 1 if position + 1 < len(starts) else original_last
            tail = PlanNode(
                f"S{len(self.nodes) + 1}",
                first,
                self.trim(first, last),
                _first_sentence(sentences[index].text),
            )
            stop = sentences[starts[position + 1]].line if position + 1 < len(starts) else 10**9
            tail.sentences = [s for s in sentences[index:] if s.line < stop]
            tail.blocks = []
            tail.cond = _condition_text(sentences[index].text)
            tail.exit = bool(_EXIT.search(sentences[index].text)) and not _REMEDY_WORDS.search(
                sentences[index].text
            )
            self.nodes.append(tail)
            self.parent[tail.id] = node.id
            units.append(tail)
        node.sentences = [s for s in sentences if s.line < sentences[starts[0]].line]
        # jumps go with the sentence that says them; "In both cases, proceed to Step 7" with both
        node.jumps = _sentence_jumps(node.sentences)
        for piece in units[1:]:
            assert isinstance(piece, PlanNode)
            piece.jumps = _sentence_jumps(piece.sentences)
            node.jumps += _sentence_jumps([x for x in piece.sentences if _EITHER_WAY.match(x.text)])
        if node.exit and node.sentences:
            kept = node.sentences
            node.exit = (not _has_code(node.blocks) and bool(_EXIT.search(kept[0].text))) or (
                states_end(kept[-1].text) and not _is_condition(kept[-1].text)
            )
        node.exit_cond = (
            None if node.exit_cond and node.exit_cond in [t.cond for t in units[1:]] else node.exit_cond
        )
        node.forward_cond = None
        return _Group("tails", units)

    # -- sections -------------------------------------------------------------------------

    def section(self, sec: Sec, top: bool = False) -> _Unit | None:
        if not top and _background(sec):
            return None
        merged = [c for c in sec.children if _INTERPRETS.match(c.title)]
        children = [c for c in sec.children if c not in merged and not _background(c)]
        own, intro, first_unit = self.block_units(sec.blocks, sec)
        pairs = [(c, u) for c in children if (u := self.section(c)) is not None]
        children = [c for c, _ in pairs]
        child_units = [u for _, u in pairs]
        number = None
        title = sec.title
        numbered = _STEP_TITLE.match(sec.title)
        if numbered:
            number = int(numbered.group("a") or numbered.group("b"))
        if own is None and not child_units:
            if top:
                return None
            blocks = list(sec.blocks) + [b for c in merged for b in c.blocks]
            if not self.actionable(sec.title, blocks, bool(merged)):
                return None
            last = max([sec.last, *(c.last for c in merged)])
            if children:
                last = self.trim(sec.line, min(c.line for c in children) - 1)
            return self.node(
                sec.line, last, _strip_number(title), blocks, number, flow=list(sec.blocks), labelled=True
            )
        intro_sentences = _sentences_of(intro)
        group_cond: str | None = None
        if re.match(r"^(?:if|when|in case)\b", sec.title, re.I):
            group_cond = sec.title
        intro_node: _Unit | None = None
        if intro and not top and self.intro_is_step(intro, intro_sentences):
            end = (
                first_unit - 1
                if first_unit
                else (min(c.line for c in children) - 1 if children else sec.last)
            )
            intro_node = self.node(sec.line, end, _strip_number(title), intro, number, labelled=True)
        elif (intro_sentences and _is_condition(intro_sentences[0].text) and group_cond is None) or (
            intro_sentences and _ONLY.search(intro_sentences[0].text)
        ):
            group_cond = _condition_text(intro_sentences[0].text)
        items: list[_Unit] = []
        if intro_node is not None:
            items.append(intro_node)
        if own is not None:
            items.append(own)
        triage = _triage(intro, children)
        if triage and child_units:
            # "Is it your Pods, your RC or your Service?" + links to the sections: one branch each
            for child, unit in zip(children, child_units, strict=True):
                if child.title in triage and _unit_cond(unit) is None:
                    _set_cond(unit, f"the problem is: {triage[child.title]}")
            items.append(_Group("alt", child_units) if len(child_units) > 1 else child_units[0])
            child_units = []
        if child_units:
            mode = self.children_mode(
                children, child_units, intro_sentences, intro_node is not None and own is None
            )
            if mode == "fork" and intro_node is not None:
                branches = _Group("branches", child_units)
                for child, unit in zip(children, child_units, strict=True):
                    if _unit_cond(unit) is None:
                        _set_cond(unit, child.title)
                items = [_Group("fork", [intro_node, branches])]
            else:
                if mode == "alt":
                    for child, unit in zip(children, child_units, strict=True):
                        if _unit_cond(unit) is None:
                            _set_cond(unit, child.title)
                items.append(_Group(mode, child_units) if len(child_units) > 1 else child_units[0])
        if not items:
            return None
        choice = next((x.text for x in intro_sentences if _CHOICE.search(x.text)), None)
        if intro_node is not None and choice is not None and len(items) > 1:
            # "This process cannot be used for X; see the procedure below": the steps after the
            # choice run only when it allows them; otherwise the flow moves on past them.
            items = [
                items[0],
                _Group("seq", items[1:], cond=f"the procedure applies: {_condition_text(choice)}"),
            ]
        group = _Group("seq", items, cond=group_cond, title=sec.title, otherwise_ends=group_cond is not None)
        branching = any(_opens_with_branches(i) for i in items[:1])
        if (
            _REMEDY_TITLE.match(sec.title)
            and group.cond is None
            and _unit_cond(group) is None
            and not branching
        ):
            group.cond = "the diagnosis found the problem this fixes"
            group.otherwise_ends = True
            group.implicit = True
        return group

    def actionable(self, title: str, blocks: list[Blk], merged: bool) -> bool:
        if _has_code(blocks) or merged:
            return True
        if re.match(r"^step\s*\d+\b", title, re.I) and _sentences_of(blocks):
            return True  # the author calls it a step ("### Step 4. Pick the cause" + routing bullets)
        title = _strip_number(title)
        if any(_EXIT.search(s.text) for s in _sentences_of(blocks)):
            return True
        if _REMEDY_TITLE.match(title) or _IMPERATIVE.match(title) or _COND_TITLE.match(title):
            return bool(_sentences_of(blocks)) or True
        for sentence in _sentences_of(blocks):
            if _imperative(sentence.text) or _ADVICE.search(sentence.text):
                return True
        return False

    def intro_is_step(self, intro: list[Blk], sentences: list[Sentence]) -> bool:
        if _has_code(intro):
            return True
        for sentence in sentences:
            text = sentence.text
            if _CHOICE.search(text):
                return True
            if _imperative(text) and not _ANNOUNCE.search(text):
                return True
        return False

    def children_mode(
        self, secs: list[Sec], units: list[_Unit], intro: list[Sentence], has_intro_step: bool
    ) -> str:
        intro_text = " ".join(s.text for s in intro)
        titles = [s.title for s in secs]
        if len(units) > 1 and all(_ALT_TITLE.match(t) for t in titles):
            return "alt"
        if len(units) > 1 and _ALTERNATIVE.search(intro_text):
            return "alt"
        if len(units) > 1 and _PARALLEL.search(intro_text):
            return "par"
        if has_intro_step and not any(_STEP_TITLE.match(t) or _IMPERATIVE.match(t) for t in titles):
            return "fork"
        if len(units) > 1 and all(
            re.match(r"^(?:for|when|if|in case|using|with|on)\b", t, re.I) for t in titles
        ):
            return "alt"
        return "seq"

    # -- blocks ---------------------------------------------------------------------------

    def block_units(self, blocks: list[Blk], sec: Sec) -> tuple[_Unit | None, list[Blk], int]:
        """The step units among a section's blocks, the intro before them, the first unit's line."""
        labelled = [i for i, b in enumerate(blocks) if b.kind == "para" and _STEP_PARA.match(b.text)]
        if labelled:
            units: list[_Unit] = []
            for position, index in enumerate(labelled):
                stop = labelled[position + 1] if position + 1 < len(labelled) else len(blocks)
                chunk = blocks[index:stop]
                last = chunk[-1].last
                match = _STEP_PARA.match(blocks[index].text)
                assert match is not None
                title = _first_sentence(blocks[index].text[match.end() :] or blocks[index].text)
                units.append(
                    self.node(blocks[index].first, last, title, chunk, int(match.group("n")), labelled=True)
                )
            return _Group("seq", units), blocks[: labelled[0]], blocks[labelled[0]].first
        units = []
        intro: list[Blk] = []
        first_line = 0
        lead = ""
        between: list[Blk] = []  # prose after a step list, kept for its last item if more steps follow
        trailing: list[Blk] = []  # everything from the first paragraph after the last step list
        for blk in blocks:
            if blk.kind == "list" and self.step_list(blk, lead, sec):
                unit = self.list_unit(blk, lead)
                if unit is not None:
                    if not units:
                        first_line = blk.first
                    else:
                        self.attach(between)
                    between = []
                    trailing = []
                    units.append(unit)
                    lead = ""
                    continue
            if units and (trailing or blk.kind == "para"):
                trailing.append(blk)
            if not units:
                intro.append(blk)
            elif blk.kind == "code":
                if not between:
                    self.attach([blk])  # a command block right after an item belongs to it
                between = []
            elif blk.kind == "para":
                between.append(blk)
            else:
                between = []
            if blk.kind == "para":
                lead = blk.text
        if not units:
            return None, blocks, 0
        if trailing:
            closing = self.closing(trailing, units[-1])
            if closing is not None:
                units.append(closing)
        return (_Group("seq", units) if len(units) > 1 else units[0]), intro, first_line

    def closing(self, trailing: list[Blk], before: _Unit) -> _Unit | None:
        """Prose (and commands) after the last step list of a section: "After a mitigation, watch
        the pod: …" is a step every item leads to; "Then skip step 5 and continue with step 6"
        only routes the items onwards."""
        sentences = _sentences_of(trailing)
        routes = [s for s in sentences if _JUMP.search(s.text) or _GO_BACK.search(s.text) or _moves(s.text)]
        acts = [
            s
            for s in sentences
            if s not in routes
            and not re.match(r"^note\b", s.text, re.I)  # "Note also that …": information
            and (_imperative(s.text) or _ADVICE.search(s.text))
        ]
        shown = bool(sentences) and _SHOWS_OUTPUT.search(sentences[0].text) is not None
        if (_has_code(trailing) and not shown) or acts:
            title = _first_sentence(sentences[0].text if sentences else "closing step")
            return self.node(trailing[0].first, trailing[-1].last, title, trailing)
        for leaf in _leaves(before):
            for sentence in routes:
                for match in _JUMP.finditer(sentence.text):
                    cond = _jump_condition(sentence.text, match.start())
                    leaf.jumps.append((int(match.group("n")), cond, bool(match.group("back"))))
                for match in _GO_BACK.finditer(sentence.text):
                    leaf.jumps.append((int(match.group("n")), None, True))
                moved = _moves(sentence.text)
                if moved is not None and not _JUMP.search(sentence.text):
                    name, cond = moved
                    leaf.section_jumps.append((name, cond))
                    if cond is None:
                        leaf.moves_to.add(name)
        return None

    def attach(self, blocks: list[Blk]) -> None:
        if not blocks or not self.nodes:
            return
        node = max(self.nodes, key=lambda n: n.first)
        node.blocks.extend(blocks)
        node.last = max(node.last, max(b.last for b in blocks))

    def step_list(self, blk: Blk, lead: str, sec: Sec) -> bool:
        items = blk.children
        if not items:
            return False
        if re.search(
            r"\b(?:symptoms?|causes?|reasons?|include the following conditions|such as)\b", lead, re.I
        ):
            return False
        votes = 0
        for item in items:
            own = item.own_text()
            if _imperative(own) or _has_code(item.children) or _is_condition(own):
                votes += 1
        if _PARALLEL.search(lead) or _ALTERNATIVE.search(lead):
            return True  # "check each of the following:" 1. Disk I/O: `iostat -x 5 3` …
        if blk.ordered:
            return votes * 2 >= len(items)
        conditional = sum(1 for i in items if _is_condition(i.own_text()))
        if conditional * 2 >= len(items) and conditional >= 1:
            return True
        return votes == len(items) and len(items) > 1 and all(_imperative(i.own_text()) for i in items)

    def list_unit(self, blk: Blk, lead: str) -> _Unit | None:
        units: list[_Unit] = []
        markers = [i.marker for i in blk.children]
        auto = len(set(markers)) == 1 and len(markers) > 1
        for index, item in enumerate(blk.children):
            own = item.own_text()
            number = None
            if blk.ordered:
                number = index + 1 if auto or not item.marker.isdigit() else int(item.marker)
                if not auto and item.marker.isdigit():
                    number = int(item.marker)
            nested = [b for b in item.children if b.kind == "list" and b.ordered]
            own_names_action = _imperative(own) or bool(_REMEDY_START.match(own))
            if nested and not own_names_action and (own.rstrip().endswith(":") or _is_condition(own)):
                inner = self.list_unit(nested[0], own)
                if inner is not None:
                    group = _Group("seq", [inner], cond=_condition_text(own) if _is_condition(own) else None)
                    units.append(group)
                    continue
            first_para = next((b.text for b in item.children if b.kind == "para"), "")
            title = _first_sentence(first_para or own or f"item {index + 1}")
            units.append(self.node(item.first, item.last, title, item.children, number))
        if not units:
            return None
        conditional = [u for u in units if _unit_cond(u) is not None]
        if not blk.ordered and len(conditional) * 2 >= len(units) and len(conditional) >= 1:
            return _Group("branches", units)
        if _ALTERNATIVE.search(lead):
            for unit in units:
                if _unit_cond(unit) is None:
                    _set_cond(unit, f"you choose: {_unit_title(unit)}")
            return _Group("alt", units)
        if _PARALLEL.search(lead) and len(units) > 1:
            return _Group("par", units)
        return _Group("seq", units)


def _sentence_jumps(sentences: list[Sentence]) -> list[tuple[int, str | None, bool]]:
    """ "go to step N" / "go back to step N" in these sentences: (step, condition, back)."""
    found: list[tuple[int, str | None, bool]] = []
    for sentence in sentences:
        for match in _JUMP.finditer(sentence.text):
            cond = _jump_condition(sentence.text, match.start())
            found.append((int(match.group("n")), cond, bool(match.group("back"))))
        for match in _GO_BACK.finditer(sentence.text):
            found.append((int(match.group("n")), None, True))
    return found


_ROUTE_LABEL = re.compile(r"(?P<label>\S[^:→]{3,}?)\s*(?::|→|->|=>|—|–)\s*(?:[\w\s,;]{0,60}?[;,]\s*)?$")


def _jump_condition(text: str, start: int) -> str | None:
    """The condition of a jump: "If X, go to step 5", or a routing label ("X: move on to Step 5",
    "`X` → go to ...", as lists that route the reader write it)."""
    if _is_condition(text):
        return _condition_text(text)
    label = _ROUTE_LABEL.fullmatch(text[:start])
    if label is None:
        return None
    words = label.group("label").strip().strip("`*_").strip()
    return words if len(words.split()) >= 2 else None


def _opens_with_branches(unit: _Unit) -> bool:
    """Whether a unit starts with alternatives or conditional branches (through sequences)."""
    while isinstance(unit, _Group) and unit.mode == "seq" and unit.items:
        unit = unit.items[0]
    return isinstance(unit, _Group) and unit.mode in ("alt", "branches")


def _leaves(unit: _Unit) -> list[PlanNode]:
    """The steps a unit's flow leaves from: the last of a sequence, every item of the others."""
    if isinstance(unit, PlanNode):
        return [unit]
    if unit.mode in ("seq", "tails") and unit.items:
        return _leaves(unit.items[-1]) if unit.mode == "seq" else [n for i in unit.items for n in _leaves(i)]
    return [n for item in unit.items for n in _leaves(item)]


def _background(sec: Sec) -> bool:
    """A Meaning/Description/… section, unless the author labels steps in it (``**Step 1: …**``)."""
    if not _INFORMATIONAL.match(sec.title):
        return False
    return not any(b.kind == "para" and _STEP_PARA.match(b.text) for b in sec.blocks)


def _triage(intro: list[Blk], children: list[Sec]) -> dict[str, str]:
    """Child section title → link text, when the intro lists a link to each of them."""
    anchors = {slugify(c.title): c.title for c in children}
    found: dict[str, str] = {}
    for blk in intro:
        if blk.kind != "list":
            continue
        for item in blk.children:
            for para in (b for b in item.children if b.kind == "para"):
                for text, href, _ in para.links:
                    if href.startswith("#") and href[1:] in anchors:
                        found[anchors[href[1:]]] = text
    return found if len(found) >= 2 else {}


def _strip_number(title: str) -> str:
    match = _STEP_TITLE.match(title)
    return title[match.end() :].strip(" -:") or title if match else title


def _unit_cond(unit: _Unit) -> str | None:
    if isinstance(unit, PlanNode):
        return unit.cond
    if unit.cond is not None:
        return unit.cond
    if unit.mode in ("seq", "tails") and unit.items:
        return _unit_cond(unit.items[0])
    if unit.mode == "fork" and unit.items:
        return _unit_cond(unit.items[0])
    return None


def _set_cond(unit: _Unit, cond: str) -> None:
    if isinstance(unit, PlanNode):
        unit.cond = cond
    else:
        unit.cond = cond


def _unit_title(unit: _Unit) -> str:
    if isinstance(unit, PlanNode):
        return unit.title
    return unit.title or (_unit_title(unit.items[0]) if unit.items else "")


def _main(unit: _Unit) -> PlanNode | None:
    if isinstance(unit, PlanNode):
        return unit
    return _main(unit.items[0]) if unit.items else None


# -- linking ----------------------------------------------------------------------------------

_Pending = list[tuple[str, str | None]]


def _otherwise(cond: str | None) -> str:
    return f"{_OTHERWISE_PREFIX}{cond})" if cond else "otherwise"


class _Linker:
    def __init__(self) -> None:
        self.edges: dict[tuple[str, str], PlanEdge] = {}

    def edge(self, src: str, dst: str, cond: str | None, loop: bool = False) -> None:
        if src == dst and not loop:
            return
        key = (src, dst)
        if key in self.edges:
            existing = self.edges[key]
            if existing.condition and not cond:
                existing.condition = None
            return
        self.edges[key] = PlanEdge(src, dst, cond, loop)

    def link(self, unit: _Unit, pending: _Pending, skip: bool = True) -> _Pending:
        """Connect ``pending`` exits into ``unit``; return its exits. ``skip``: a conditional
        first item also passes the flow on past it (off inside branches, already conditional)."""
        if isinstance(unit, PlanNode):
            return self.node(unit, pending)
        if unit.implicit and all(p == START for p, _ in pending):
            unit.cond = None  # nothing was diagnosed before it: a procedure, not a remedy choice
        if unit.cond is not None:
            pending = [(p, unit.cond) for p, _ in pending]
        if unit.mode == "tails":
            return self.tails(unit.items, pending)
        if unit.mode == "seq":
            return self.seq(unit.items, pending, skip)
        if unit.mode == "par":
            out: _Pending = []
            for item in unit.items:
                out.extend(self.link(item, pending))
            return out
        if unit.mode in ("alt", "branches"):
            out = []
            for item in unit.items:
                out.extend(self.link(item, pending, skip=False))
            return out
        if unit.mode == "fork":
            # Sections per symptom under a step: each is a branch from that step and ends the
            # guide unless the author says where to go next.
            head, branches = unit.items[0], unit.items[1]
            out = self.link(head, pending)
            main = _main(head)
            assert main is not None and isinstance(branches, _Group)
            for item in branches.items:
                for src, cond in self.link(item, [(main.id, None)], skip=False):
                    self.edge(src, END, cond)
            for src, cond in out:
                if src != main.id or cond is not None:
                    self.edge(src, END, cond)
            return []
        return pending

    def tails(self, items: list[_Unit], pending: _Pending) -> _Pending:
        """A step and its conditional tails: head → t1 → t2 …, each also passing on when its
        next tail's condition does not hold."""
        head = items[0]
        out: _Pending = []
        current = self.link(head, pending)
        for tail in items[1:]:
            cond = _unit_cond(tail)
            out.extend((src, _otherwise(cond)) for src, _ in current)
            current = self.link(tail, current)
        return out + current

    def node(self, node: PlanNode, pending: _Pending) -> _Pending:
        for src, cond in pending:
            self.edge(src, node.id, node.cond or cond)
        if node.exit:
            self.edge(node.id, END, None)
            return []
        if node.exit_cond:
            self.edge(node.id, END, node.exit_cond)
            return [(node.id, _otherwise(node.exit_cond))]
        if node.forward_cond:
            self.edge(node.id, END, _otherwise(node.forward_cond))
            return [(node.id, node.forward_cond)]
        return [(node.id, None)]

    def seq(self, items: list[_Unit], pending: _Pending, skip: bool = True) -> _Pending:
        header: PlanNode | None = None
        for index, item in enumerate(items):
            cond = _unit_cond(item)
            if isinstance(item, PlanNode) and item.loop_header and header is None:
                pending = self.node(item, pending)
                header = item
                pending = [(item.id, f"while not: {item.loop_header}")]
                continue
            only_start = all(p == START for p, _ in pending)
            if cond is not None and pending and (skip or index > 0) and not only_start:
                entered = self.link(item, pending)
                if isinstance(item, _Group) and item.otherwise_ends:
                    for src, _ in pending:
                        self.edge(src, END, _otherwise(cond))
                    pending = entered
                else:
                    pending = entered + [(p, _otherwise(cond)) for p, _ in pending]
            else:
                pending = self.link(item, pending)
        if header is not None:
            for src, _ in pending:
                self.edge(src, header.id, f"repeat until {header.loop_header}", loop=True)
            pending = [(header.id, header.loop_header)]
        return pending


def build_plan(text: str, source: str | None = None) -> Plan:
    """Read a guide's steps, control flow and commands (deterministic; no LLM)."""
    root, lines = parse_doc(text)
    reader = _Reader(lines)
    top = root
    title = ""
    headings = [c for c in root.children]
    if len(headings) == 1 and headings[0].level == 1:
        top = headings[0]
        title = top.title
        if root.blocks and not top.blocks:
            top.blocks = []  # the document's intro is not a step
    elif headings:
        title = next((h.title for h in headings if h.level == 1), headings[0].title)
    unit = reader.section(top, top=True)
    if top is not root and root.children != [top]:
        unit = reader.section(root, top=True)
    nodes = sorted(reader.nodes, key=lambda n: n.first)
    for index, node in enumerate(nodes, 1):
        node.id = f"S{index}" if node.id else node.id
    # commands: the document's units in order, then each command to the node holding its line
    ordered = sorted(reader.nodes, key=lambda n: n.first)
    units = [(index, n.blocks, n.title) for index, n in enumerate(ordered)]
    sections = [sec.line for sec in (top.children or root.children)]
    commands = find_commands(units, lines, sections)
    for command in commands:
        holder = next((n for n in ordered if n.first <= command.line <= n.last), None)
        if holder is None:
            holder = next((n for n in ordered if n.first <= command.line <= max(n.last, n.first)), None)
        if holder is not None:
            holder.commands.append(command)
    linker = _Linker()
    pending: _Pending = [(START, None)]
    if unit is not None:
        pending = linker.link(unit, pending)
    for src, cond in pending:
        linker.edge(src, END, cond)
    _parallel_ranges(ordered, linker)
    _jumps(ordered, linker, set(reader.parent))
    _section_jumps(root, ordered, linker)
    for node in ordered:
        if node.repeat is not None:  # "repeat until …" on one step: a self-loop, bounded
            linker.edge(node.id, node.id, f"repeat until {node.repeat.until.text}", loop=True)
            edge = linker.edges[(node.id, node.id)]
            edge.max_iterations, edge.interval_s = node.repeat.max_iterations, node.repeat.interval_s
    firsts = [e.dst for e in linker.edges.values() if e.src == START]
    for node in ordered:
        # "Use the same diagnostic approaches as listed above": back to the guide's first checks.
        if any(_BACK_TO_ABOVE.search(s.text) for s in node.sentences):
            for target in firsts:
                if target != node.id:
                    linker.edge(node.id, target, "to validate the change", loop=True)
    for node in ordered:
        # "If none of the above solves your problem, …": reached from the end of every way above
        if node.cond and _SUMMARY_AFTER.search(node.cond):
            for edge in list(linker.edges.values()):
                before = next((n for n in ordered if n.id == edge.src), None)
                if edge.dst == END and not edge.loop and before is not None and before.first < node.first:
                    linker.edge(edge.src, node.id, node.cond)
    edges = list(linker.edges.values())
    _ensure_connected(ordered, edges)
    for node in ordered:
        node.kind = _kind(node)
    kinds = {n.id: n.kind for n in ordered}
    diagnosed = _diagnosed(ordered, edges, kinds)
    for edge in edges:
        # A remedy after a check runs on what the check found: the author's implicit condition
        # (unless a diagnosis already decided the way here: "if above 85%, go to step 4").
        if (
            not edge.condition
            and not edge.loop
            and kinds.get(edge.src) == "check"
            and kinds.get(edge.dst) == "remedy"
            and edge.src not in diagnosed
        ):
            edge.condition = (
                f"the check found the problem ({_first_sentence(linker_title(ordered, edge.src), 60)})"
            )
    gates = _gates(ordered, edges)
    return Plan(title or "guide", ordered, edges, gates, source)


def _diagnosed(nodes: list[PlanNode], edges: list[PlanEdge], kinds: dict[str, str]) -> set[str]:
    """Steps reached only through a condition decided on a check's outcome."""
    incoming: dict[str, list[PlanEdge]] = {}
    for edge in edges:
        if not edge.loop and edge.src != edge.dst:
            incoming.setdefault(edge.dst, []).append(edge)
    found: set[str] = set()
    for node in nodes:  # document order: predecessors first (forward edges)
        ins = incoming.get(node.id, [])
        if ins and all(
            e.src in found or (e.condition and e.src != START and kinds.get(e.src) in ("check", "remedy"))
            for e in ins
        ):
            found.add(node.id)
    return found


def linker_title(nodes: list[PlanNode], node_id: str) -> str:
    return next((n.title for n in nodes if n.id == node_id), node_id)


def _parallel_ranges(nodes: list[PlanNode], linker: _Linker) -> None:
    """ "Start Steps 2 through 10 in parallel": each starts from here, the step after them joins."""
    for node in nodes:
        if node.parallel_range is None:
            continue
        low, high = node.parallel_range
        group = [
            n for n in nodes if n.number is not None and low <= n.number <= high and n.first > node.first
        ]
        if len(group) < 2:
            continue
        ids = {n.id for n in group}
        after = next((n for n in nodes if n.number == high + 1 and n.first > group[-1].first), None)
        for key, edge in list(linker.edges.items()):
            inside = edge.src in ids and edge.dst in ids
            if (inside or (edge.src == node.id and edge.dst in ids)) and not edge.loop:
                del linker.edges[key]
        for member in group:
            linker.edge(node.id, member.id, None)
            if after is not None and not any(e.src == member.id for e in linker.edges.values()):
                linker.edge(member.id, after.id, None)


def _jumps(nodes: list[PlanNode], linker: _Linker, tails: set[str] | frozenset[str] = frozenset()) -> None:
    """ "go to / proceed to / go back to step N" edges; ``tails``: the split conditional tails."""
    for node in nodes:
        for number, cond, back in node.jumps:
            if cond is not None and is_otherwise(cond) and node.exit_cond:
                cond = _otherwise(node.exit_cond)  # "Otherwise, proceed to Step 11": when X did not hold
            # "continue to Step 2": the nearest step 2 after this one (before it for "go back")
            same = [n for n in nodes if n.number == number and n is not node]
            if any(n.labelled for n in same):  # "step 3" is the heading "### 3.", not item 3 of a list
                same = [n for n in same if n.labelled]
            after = [n for n in same if n.first > node.first]
            before = [n for n in same if n.first < node.first]
            target = (before[-1] if before else None) if back else (after[0] if after else None)
            if target is None:
                target = before[-1] if before else (after[0] if after else None)
            if target is None:
                continue
            loop = back or target.first < node.first
            redirected = False
            if cond is None and (not loop or node.id in tails):
                # "Proceed to Step 11.": the author says where to go next, not the next heading;
                # "fix X, then go back to Step 1" (a split tail): back, not onwards
                for key, edge in list(linker.edges.items()):
                    if edge.src != node.id or edge.dst == END or edge.loop:
                        continue
                    if not edge.condition or loop:
                        del linker.edges[key]
                    elif edge.negated:
                        # "otherwise" onwards past a tail: onwards is now the jump's target
                        del linker.edges[key]
                        linker.edge(node.id, target.id, edge.condition)
                        redirected = True
            if cond is not None and loop:
                _otherwise_forward(linker, node, cond)  # "If still X, go back to step 3": else onwards
            if cond is not None and not loop:
                others = [
                    e for e in linker.edges.values() if e.src == node.id and e.dst != target.id and not e.loop
                ]
                for edge in others:
                    if not edge.condition:
                        edge.condition = _otherwise(cond)
                existing = linker.edges.get((node.id, target.id))
                if existing is not None and not existing.condition:
                    # "If X, continue to Step 2" where step 2 is next anyway: only if X, else stop
                    existing.condition = cond
                    if not others:
                        linker.edge(node.id, END, _otherwise(cond))
            if not redirected:
                linker.edge(node.id, target.id, cond or ("go back" if loop else None), loop=loop)
            bound, interval = node.bounds.get(number, (None, None))
            edge = linker.edges[(node.id, target.id)]
            edge.max_iterations, edge.interval_s = bound, interval


def _otherwise_forward(linker: _Linker, node: PlanNode, cond: str) -> None:
    """A conditional loop back: the step's unconditional ways onwards hold only otherwise."""
    for edge in linker.edges.values():
        if edge.src == node.id and not edge.loop and not edge.condition:
            edge.condition = _otherwise(cond)


def _moves(text: str) -> tuple[str, str | None] | None:
    """'Continue with "Check recovery".' after a list: (section name, condition) of a move, if any."""
    section = _SECTION_JUMP.search(text)
    if section is None or not _MOVE_VERB.match(section.group(0)):
        return None
    name = (section.group("a") or section.group("b") or section.group("d") or "").strip().strip("`*")
    if not name or name.lower() in ("following", "next", "above", "below", "this", "same"):
        return None
    return name, _jump_condition(text, section.start())


def _title_key(title: str) -> str:
    """A heading title as a jump names it: case and trailing punctuation do not matter."""
    return title.lower().strip().strip("`*").rstrip(" .:!?")


def _section_jumps(root: Sec, nodes: list[PlanNode], linker: _Linker) -> None:
    """ "If X, go to the Mitigation section": an edge to that section's first step."""
    sections: list[Sec] = []
    stack = [root]
    while stack:
        sec = stack.pop()
        sections.append(sec)
        stack.extend(sec.children)
    for node in nodes:
        for name, cond in node.section_jumps:
            wanted = name.lower().rstrip(":")
            # 'Repeat from "Find out why…"': a cut name (ellipsis) matches the start of a title
            cut = re.search(r"(?:…|\.\.\.)\s*$", wanted) is not None
            wanted = re.sub(r"(?:…|\.\.\.)\s*$", "", wanted).rstrip(" .:!?")
            if wanted.startswith("#"):
                found = next((x for x in sections if slugify(x.title) == wanted[1:]), None)
            else:
                found = next((x for x in sections if _title_key(x.title) == wanted), None)
            if found is None and cut and len(wanted) >= 4:
                found = next(
                    (x for x in sections if x.level and _title_key(x.title).startswith(wanted)), None
                )
            if found is None:
                found = next((x for x in sections if x.level and wanted in x.title.lower()), None)
            if found is None:
                continue
            place = found
            target = next((n for n in nodes if place.line <= n.first <= max(place.last, place.line)), None)
            if target is None or target is node:
                continue
            loop = target.first < node.first
            if cond is not None and loop:
                _otherwise_forward(linker, node, cond)
            if cond is not None and not loop:
                for edge in list(linker.edges.values()):
                    if edge.src == node.id and edge.dst != END and not edge.condition and not edge.loop:
                        # the jump names the next step itself: that edge is the jump's, not "otherwise"
                        edge.condition = cond if edge.dst == target.id else _otherwise(cond)
            if cond is None and not loop and name in node.moves_to:
                # 'Continue with "Check recovery"': the step goes there instead of to the next one
                for key, edge in list(linker.edges.items()):
                    moved = edge.src == node.id and edge.dst not in (END, target.id)
                    if moved and not edge.condition and not edge.loop:
                        del linker.edges[key]
            linker.edge(node.id, target.id, cond, loop=loop)


def _ensure_connected(nodes: list[PlanNode], edges: list[PlanEdge]) -> None:
    ins = {e.dst for e in edges}
    outs = {e.src for e in edges}
    for node in nodes:
        if node.id not in ins:  # a section the flow never reaches: an entry of its own
            edges.append(PlanEdge(START, node.id, None))
        if node.id not in outs:
            edges.append(PlanEdge(node.id, END, None))


def _kind(node: PlanNode) -> str:
    if node.loop_header or (not node.commands and _CHOICE.search(node.text) and len(node.sentences) <= 6):
        return "decision"
    mutating = [c for c in node.commands if c.mutating]
    helpers = re.compile(
        r"\b(?:kubectl|oc)\s+(?:run|debug)\b|\btoolbox\b|apt-get|\byum\b|\bdnf\b|>\s*\S+\.ya?ml"
    )
    real = [c for c in mutating if not helpers.search(c.full)]
    opening = node.sentences[0].text if node.sentences else node.title
    only_reads = bool(node.commands) and not mutating
    if real or (not only_reads and (_REMEDY_START.match(opening) or _REMEDY_START.match(node.title))):
        return "remedy"
    navigates = re.match(r"^(?:ssh|open a (?:shell|terminal|remote shell)|log ?in|login)\b", opening, re.I)
    if (
        node.exit
        or navigates
        or (not node.commands and (_MANUAL.match(opening) or _MANUAL.match(node.title)))
    ):
        return "manual"
    return "check"


def _gates(nodes: list[PlanNode], edges: list[PlanEdge]) -> list[Gate]:
    preds: dict[str, list[PlanEdge]] = {}
    for edge in edges:
        if not edge.loop:
            preds.setdefault(edge.dst, []).append(edge)
    gates: list[Gate] = []
    for node in nodes:
        if node.kind != "remedy":
            continue
        seen: set[str] = set()
        stack = [node.id]
        found: tuple[str, str] | None = None
        while stack and found is None:
            current = stack.pop(0)
            for edge in preds.get(current, []):
                if edge.condition:
                    found = (edge.src, edge.condition)
                    break
                if edge.src not in seen and edge.src != START:
                    seen.add(edge.src)
                    stack.append(edge.src)
        if found is not None:
            requires = found[0] if found[0] != START else node.id
            gates.append(Gate(node.id, requires, found[1]))
    return gates


class PlanError(ValueError):
    """A PlanDAG file that cannot be used with its guide (one message per problem)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[PlanError], tuple[list[str]]]:
        # pickle would call __init__ with the joined message, split into characters.
        return (type(self), (self.problems,))


def plan_from_plandag(data: Any, text: str, source: str | None = None) -> Plan:
    """A reviewed PlanDAG (``--format plandag``, maybe edited) over its guide.

    Steps, edges, conditions, kinds and ``where`` come from the file; every command must be
    one the guide itself has at that line (the file can choose among the guide's commands and
    say where they run, never add text of its own), and the edges other than loops must not
    form a cycle.
    """
    problems: list[str] = []
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise PlanError(["not a PlanDAG: expected an object with a 'nodes' list"])
    base = build_plan(text, source)
    known = {c.line: c for n in base.nodes for c in n.commands}
    lines = text.splitlines()
    nodes: list[PlanNode] = []
    names: set[str] = set()
    target: dict[str, str] = {}
    for raw in data["nodes"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("node"), str):
            problems.append("every node needs a 'node' name")
            continue
        name = raw["node"]
        if name in names:
            problems.append(f"node {name!r} appears twice")
        names.add(name)
        for edge in raw.get("input_edges") or []:
            if isinstance(edge, dict) and isinstance(edge.get("edge"), str):
                target[edge["edge"]] = name
        if name in (START, END):
            continue
        span = raw.get("lines")
        if not (isinstance(span, list) and len(span) == 2 and all(isinstance(x, int) for x in span)):
            problems.append(f"node {name!r}: 'lines' must be [first, last]")
            continue
        first, last = span
        if not 1 <= first <= last <= max(len(lines), 1):
            problems.append(f"node {name!r}: lines {first}-{last} are not lines of the guide")
            continue
        node = PlanNode(
            name, first, last, str(raw.get("description") or name), kind=str(raw.get("kind") or "check")
        )
        node.sentences = [Sentence(first, " ".join(x.strip() for x in lines[first - 1 : last] if x.strip()))]
        for item in raw.get("commands") or []:
            line = item.get("line") if isinstance(item, dict) else None
            found = known.get(line) if isinstance(line, int) else None
            if found is None:
                problems.append(f"node {name!r}: the guide has no command at line {line}")
                continue
            where = item.get("where", found.where)
            if where not in ("local", "pod", "node", "database", "cloud-console", "other"):
                problems.append(f"node {name!r}: line {line}: unknown where {where!r}")
                continue
            node.commands.append(
                GuideCommand(
                    found.line, found.text, found.full, found.language, found.mutating, where, found.inline
                )
            )
        nodes.append(node)
    if START not in names or END not in names:
        problems.append("a PlanDAG needs the nodes 'start' and 'end'")
    edges: list[PlanEdge] = []
    for raw in data["nodes"]:
        if not isinstance(raw, dict):
            continue
        src = raw.get("node")
        for item in raw.get("output_edges") or []:
            if not isinstance(item, dict) or not isinstance(item.get("edge"), str):
                continue
            dst = target.get(item["edge"])
            prefix = f"edge_{src}_"
            if dst is None and item["edge"].startswith(prefix) and item["edge"][len(prefix) :] in names:
                dst = item["edge"][len(prefix) :]
            if dst is None:
                problems.append(f"edge {item['edge']!r}: no node lists it as an input")
                continue
            condition = item.get("condition")
            text_condition = (
                None
                if condition is None or str(condition).strip().lower() in ("", "none", "null")
                else str(condition)
            )
            edge = PlanEdge(str(src), dst, text_condition, bool(item.get("loop")))
            if isinstance(item.get("max_iterations"), int):
                edge.max_iterations = item["max_iterations"]
            edges.append(edge)
    forward = [e for e in edges if not e.loop and e.src != e.dst]
    if _has_cycle(forward):
        problems.append("the edges (other than those marked loop) form a cycle")
    if problems:
        raise PlanError(problems)
    nodes.sort(key=lambda n: n.first)
    gates = [
        Gate(str(g.get("remedy")), str(g.get("requires")), str(g.get("condition", "")))
        for g in data.get("gates") or []
        if isinstance(g, dict)
    ]
    return Plan(str(data.get("title") or base.title), nodes, edges, gates, source)


def _has_cycle(edges: list[PlanEdge]) -> bool:
    succ: dict[str, list[str]] = {}
    for edge in edges:
        succ.setdefault(edge.src, []).append(edge.dst)
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt in succ.get(node, []):
            if state.get(nxt) == 1 or (state.get(nxt) is None and visit(nxt)):
                return True
        state[node] = 2
        return False

    return any(state.get(n) is None and visit(n) for n in list(succ))
