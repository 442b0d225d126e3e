"""TSG → workflow: the guide's plan (``plan``) becomes a workflow that follows the author.

Every step of the plan becomes its commands, in the author's order, or one ``tsg_manual``
step when it has none (or when its commands must be typed somewhere else: inside a pod, on
a node, in a database shell, in a console). Edges become ``needs``; a conditional edge
becomes a ``tsg_judge`` step deciding the author's condition on the output of the step it
leaves, and the step it enters runs only when that judge says the condition holds (``not``
for "otherwise"). A step reached by several edges waits for them with ``join: any`` and a
``when`` that says which ways lead to it, so a remedy never runs because some *other* way
reached the step before it. ``--yes`` approves commands; it never decides a condition, and
an undecided condition keeps its remedy from running.

Parallelism comes from the author ("in parallel", "check the following", alternatives);
beyond that, a run of read-only checks chained only by document order (no condition, no
shared shell variable, nothing referring to "the output above") may run at once: hazard
analysis adds parallelism where the order is not needed, and never removes an order.

"Repeat until …" on a step and "go back to step N" over command-only steps become one
``tsg_repeat`` step with a bounded number of iterations — never a cycle.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from .commands import Command, make_command
from .compiled import CompiledGuide, CompiledStep
from .conditions import Condition, condition_clause, find_test
from .guide_commands import GuideCommand
from .literal import literal
from .placeholders import PLACEHOLDER, input_name
from .plan import END, START, Plan, PlanEdge, PlanNode, build_plan
from .steps import Guide

__all__ = ["compile_guide"]

_REFERS_BACK = re.compile(
    r"\b(the output (?:of|from)|from the (?:list|output) above|output above|command above|results? above|"
    r"previous (?:step|command|output)|from (?:the )?(?:first|previous|last) step|from step \d+)\b",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=")
_FOR_VARIABLE = re.compile(r"^\s*for\s+([A-Za-z_]\w*)\s+in\b")
_WHERE_TEXT = {
    "pod": "inside the pod (container shell)",
    "node": "on the node (host shell)",
    "database": "in the database shell",
    "cloud-console": "in the web console",
    "other": "in the console the guide names (metrics console, chat, …)",
}
#: Manual step text: long enough for any real step, short enough for a terminal.
_INSTRUCTION_LIMIT = 4000


def _slug(text: str, limit: int = 32) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower().replace("`", "")).strip("_")
    slug = slug[:limit].rstrip("_") or "step"
    return slug if slug[0].isalpha() else f"s_{slug}"


def _condition(text: str, line: int) -> Condition:
    """The author's condition: "If X, do Y" → X, with a measurable test when X names one."""
    clause = condition_clause(text, line)
    if clause is not None:
        return clause[0]
    cleaned = re.sub(r"^(?:only use this option if|only if|otherwise,?)\s*", "", text.strip(), flags=re.I)
    inner = re.search(r"\b(?:if|when|unless)\s+([^,.;]{4,})", cleaned, re.I)
    if inner is not None and not cleaned.lower().startswith(("the problem is", "the diagnosis")):
        cleaned = inner.group(1)  # "You can also try X if the pivot is stuck" → the pivot is stuck
    return Condition(cleaned.strip().rstrip(".:"), line, find_test(cleaned))


class _Compiler:
    def __init__(self, guide: Guide, plan: Plan) -> None:
        self.guide = guide
        self.plan = plan
        self.steps: list[CompiledStep] = []
        self.by_id: dict[str, CompiledStep] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        self.first: dict[str, str] = {}  # plan node → its first workflow step
        self.last: dict[str, str] = {}  # plan node → its last workflow step
        self.judges: dict[tuple[str, str], str] = {}
        self.assignments: list[tuple[int, str, GuideCommand]] = []  # (line, variable, command)
        self.looped: dict[str, str] = {}  # plan node inside a loop → the loop step

    # -- steps ---------------------------------------------------------------------------

    def add(self, step: CompiledStep) -> str:
        base = step.id
        counter = 2
        while step.id in self.by_id:
            step.id = f"{base}_{counter}"
            counter += 1
        self.steps.append(step)
        self.by_id[step.id] = step
        return step.id

    def declare(self, name: str, command: Command) -> None:
        if name in self.inputs:
            return
        note = self.guide.root.notes.get(name) or next(
            (s.notes[name] for s in self.guide.root.walk() if name in s.notes), None
        )
        raw = next((p.raw for p in command.placeholders if p.name == name), name)
        entry: dict[str, Any] = {
            "type": "string",
            "description": note or f"{raw} in the guide (line {command.line})",
        }
        defaults = self.guide.front_matter.get("inputs")
        if isinstance(defaults, dict) and name in defaults:
            entry["default"] = str(defaults[name])
        self.inputs[name] = entry

    def declare_database(self) -> None:
        if "database" in self.inputs:
            return
        entry: dict[str, Any] = {"type": "string", "description": "SQLite file the guide's SQL runs against"}
        defaults = self.guide.front_matter.get("inputs")
        if isinstance(defaults, dict) and defaults.get("database") is not None:
            entry["default"] = str(defaults["database"])
        self.inputs["database"] = entry

    # -- commands ------------------------------------------------------------------------

    def runnable(self, found: GuideCommand) -> Command | None:
        """The command as a tool call, with the guide's earlier shell variables in front of it."""
        language = {"shell": "shell", "sql": "sql", "promql": "promql", "logql": "logql"}.get(found.language)
        if language is None:
            return None
        text = found.full
        if language == "shell":
            used = {m.group(1) or m.group(2) for m in re.finditer(r"\$\{(\w+)\}|\$(\w+)", text)}
            own = {m.group(1) for line in text.splitlines() if (m := _FOR_VARIABLE.match(line))}
            own |= {m.group(1) for line in text.splitlines() if (m := _ASSIGNMENT.match(line))}
            prelude: list[str] = []
            for line, variable, earlier in self.assignments:
                if variable in used and variable not in own and line < found.line and not earlier.mutating:
                    prelude.append(earlier.full)
                    own.add(variable)
            if prelude:
                text = "\n".join([*dict.fromkeys(prelude), text])
            command = make_command(text, "shell", found.line)
            command.placeholders = [p for p in command.placeholders if p.name not in own]
        else:
            command = make_command(text, language, found.line)
        command.origin = found.origin
        for placeholder in command.placeholders:
            self.declare(placeholder.name, command)
        if language == "sql":
            self.declare_database()
        return command

    def remember(self, found: GuideCommand) -> None:
        if found.language != "shell":
            return
        for line in found.full.splitlines():
            match = _ASSIGNMENT.match(line)
            if match and found.full.strip().startswith(line.strip()):
                self.assignments.append((found.line, match.group(1), found))

    def command_step(self, node: PlanNode, found: GuideCommand, command: Command) -> str:
        comments = [f"guide line {command.line}: {command.text.splitlines()[-1][:90]}"]
        comments.append(f"{command.effect}: {command.classification.reason}")
        if command.origin == "llm":
            comments.append("proposed by the LLM (--llm) for a prose-only step: review it")
        if command.effect == "session":
            shown = _template(command)
            args = {
                "instruction": "Run this yourself (it keeps running or needs a person): " + shown,
                "command": shown,
                "guide_line": command.line,
            }
            step = CompiledStep(
                _slug(node.title), "tsg_manual", args, "manual", command.line, node.title, command=command,
                comments=comments,
            )  # fmt: skip
        else:
            step = CompiledStep(
                _slug(node.title),
                command.tool,
                command.tool_args(),
                "command",
                command.line,
                node.title,
                needs_approval=command.effect == "write",
                command=command,
                comments=comments,
            )
        return self.add(step)

    def elsewhere_step(self, node: PlanNode, found: GuideCommand) -> str:
        """A command to be typed inside a pod, on a node, in a database shell: shown, done by hand."""
        place = _WHERE_TEXT.get(found.where, found.where)
        shown = literal(re.sub(r"\s+", " ", found.full).strip())
        args = {
            "instruction": f"Run this {place}, as the guide says (guide line {found.line}): {shown}",
            "command": shown,
            "guide_line": found.line,
        }
        step = CompiledStep(
            _slug(node.title),
            "tsg_manual",
            args,
            "manual",
            found.line,
            node.title,
            comments=[
                f"guide line {found.line}: runs {place}, not on this machine: a manual step showing the command"
            ],
        )
        return self.add(step)

    def manual_step(self, node: PlanNode) -> str:
        text = re.sub(r"\s+", " ", node.text or node.title).strip()
        args: dict[str, Any] = {"instruction": literal(text[:_INSTRUCTION_LIMIT]), "guide_line": node.first}
        step = CompiledStep(
            _slug(node.title),
            "tsg_manual",
            args,
            "manual",
            node.first,
            node.title,
            comments=[
                f"guide line {node.first} (to {node.last}): {node.kind}, done by a person: {node.title[:70]}"
            ],
        )
        return self.add(step)

    def judge(self, edge: PlanEdge, evidence: str | None) -> str:
        base = edge.base or ""
        key = (edge.src, base)
        if key in self.judges:
            return self.judges[key]
        line = self.plan.node(edge.src).last if edge.src != START else self.plan.node(edge.dst).first
        condition = _condition(base, line)
        for code in re.findall(r"`([^`]+)`", base):  # "If `ceph status` is not HEALTH_OK": that step's output
            named = [
                s
                for s in self.steps
                if s.command is not None and s.command.text.startswith(code) and s.line <= line
            ]
            if named:
                evidence = named[-1].id
                break
        args: dict[str, Any] = {"condition": literal(condition.text), "guide_line": condition.line}
        if evidence is not None:
            args["evidence"] = f"${{{{ steps.{evidence}.output }}}}"
        decided = "an LLM judge if configured, else the operator; undecided: the branch is not taken"
        if condition.test is not None:
            args["test"] = condition.test.as_args()
            decided = f"{condition.test.describe()}; else {decided}"
        step = CompiledStep(
            f"if_{_slug(condition.text, 28)}",
            "tsg_judge",
            args,
            "judge",
            condition.line,
            f"Decide: {condition.text}",
            condition=condition,
            comments=[f"guide line {condition.line}: if {condition.text!r}", f"decided by: {decided}"],
        )
        if evidence is not None:
            step.needs = [evidence]
        judge_id = self.add(step)
        self.judges[key] = judge_id
        return judge_id

    # -- the plan ------------------------------------------------------------------------

    def emit_node(self, node: PlanNode) -> list[str]:
        ids: list[str] = []
        for found in node.commands:
            # The operator's shell runs local commands; SQL and queries have their own tools (the
            # channel the guide names). Anything typed in a pod, on a node, in a database or chat
            # session is shown to the operator instead: never run here by accident.
            here = found.where == "local" or found.language in ("sql", "promql", "logql")
            command = self.runnable(found) if here else None
            if command is None:
                ids.append(self.elsewhere_step(node, found))
            else:
                ids.append(self.command_step(node, found, command))
            self.remember(found)
        if not ids:
            ids.append(self.manual_step(node))
        for previous, current in itertools.pairwise(ids):
            step = self.by_id[current]
            step.needs = [*step.needs, previous] if previous not in step.needs else step.needs
        return ids

    def loops(self) -> dict[str, tuple[list[PlanNode], PlanEdge]]:
        """Bounded loops the workflow can run: body nodes (commands only, run here) → back edge."""
        nodes = self.plan.nodes
        found: dict[str, tuple[list[PlanNode], PlanEdge]] = {}
        for edge in self.plan.edges:
            if not edge.loop or edge.src not in {n.id for n in nodes}:
                continue
            src = self.plan.node(edge.src)
            dst = self.plan.node(edge.dst) if edge.dst not in (START, END) else None
            if dst is None:
                continue
            body = [n for n in nodes if dst.first <= n.first <= src.first]
            runs_here = all(
                c.where == "local" or c.language in ("sql", "promql", "logql")
                for n in body
                for c in n.commands
            )
            if not body or not all(n.commands for n in body) or not runs_here:
                continue
            if any(n.id in found or any(n in b for b, _ in found.values()) for n in body):
                continue
            found[body[0].id] = (body, edge)
        return found

    def loop_step(self, body: list[PlanNode], edge: PlanEdge) -> str:
        commands = [c for n in body for found in n.commands if (c := self.runnable(found)) is not None]
        commands = [c for c in commands if c.effect != "session"]
        for n in body:
            for found in n.commands:
                self.remember(found)
        text = edge.base or ""
        text = re.sub(r"^repeat until\s+", "", text)
        line = body[-1].last
        condition = _condition(text, line)
        repeat_while = edge.src != edge.dst  # "if X, go back": loop while X; "repeat until X": until X
        calls = [{"tool": c.tool, "args": c.tool_args()} for c in commands]
        args: dict[str, Any] = {
            "body": calls,
            "until": literal(condition.text),
            "max_iterations": edge.max_iterations or (3 if repeat_while else 5),
            "interval_s": edge.interval_s if edge.interval_s is not None else 1.0,
            "guide_line": condition.line,
        }
        if repeat_while:
            args["repeat_while"] = True
        if condition.test is not None:
            args["test"] = condition.test.as_args()
        verb = "while" if repeat_while else "until"
        title = body[0].title
        step = CompiledStep(
            f"repeat_{_slug(title, 24)}",
            "tsg_repeat",
            args,
            "repeat",
            body[0].first,
            title,
            needs_approval=any(c.effect != "read" for c in commands),
            body=commands,
            comments=[
                f"guide line {body[0].first} (to {body[-1].last}): repeat {verb} {condition.text!r}, at most "
                f"{args['max_iterations']} times (a bounded loop, not a cycle)"
            ],
        )
        return self.add(step)

    def run(self) -> None:
        loops = self.loops()
        inside: dict[str, str] = {}
        for node in self.plan.nodes:
            if node.id in inside:
                continue
            if node.id in loops:
                body, edge = loops[node.id]
                step_id = self.loop_step(body, edge)
                for member in body:
                    inside[member.id] = step_id
                    self.first[member.id] = self.last[member.id] = step_id
                continue
            ids = self.emit_node(node)
            self.first[node.id], self.last[node.id] = ids[0], ids[-1]
        self.connect(inside)
        self.parallel_checks()
        self.steps = _topological(self.steps)

    def connect(self, inside: dict[str, str]) -> None:
        incoming: dict[str, list[PlanEdge]] = {}
        for edge in self.plan.edges:
            if edge.loop or edge.dst in (START, END) or edge.src == edge.dst:
                continue
            if edge.src in inside and edge.dst in inside and inside[edge.src] == inside[edge.dst]:
                continue
            incoming.setdefault(edge.dst, []).append(edge)
        done: set[str] = set()
        for node in self.plan.nodes:
            first = self.first[node.id]
            if first in done:
                continue
            done.add(first)
            ways: list[tuple[str | None, str | None, bool]] = []  # (source step, judge, negated)
            for edge in incoming.get(node.id, []):
                source = self.last.get(edge.src) if edge.src != START else None
                if source == first:
                    continue
                judge = self.judge(edge, source) if edge.condition else None
                ways.append((source, judge, edge.negated))
            self.enter(self.by_id[first], ways, node)

    def enter(
        self, step: CompiledStep, ways: list[tuple[str | None, str | None, bool]], node: PlanNode
    ) -> None:
        needs = list(step.needs)
        for source, judge, _ in ways:
            for dep in (source, judge):
                if dep is not None and dep not in needs:
                    needs.append(dep)
        step.needs = needs
        if not ways:
            return
        if len(ways) == 1:
            source, judge, negated = ways[0]
            if judge is not None:
                step.gates = [(judge, negated)]
            return
        terms: list[str] = []
        for source, judge, negated in ways:
            parts = []
            if source is not None:
                parts.append(f"steps.{source}.status == 'succeeded'")
            if judge is not None:
                holds = f"steps.{judge}.output.holds"
                parts.append(f"steps.{judge}.status == 'succeeded' and {'not ' if negated else ''}{holds}")
            terms.append("(" + " and ".join(parts) + ")" if parts else "true")
        step.join = "any"
        step.when_expr = "${{ " + " or ".join(terms) + " }}"
        step.comments.append(
            f"guide line {node.first}: reached {len(ways)} ways; runs when one of them was taken (join: any)"
        )

    def parallel_checks(self) -> None:
        """Read-only checks chained only by document order may run at once (hazard analysis)."""
        plan = self.plan
        outs: dict[str, list[PlanEdge]] = {}
        ins: dict[str, list[PlanEdge]] = {}
        for edge in plan.edges:
            if edge.loop or edge.src == edge.dst:
                continue
            outs.setdefault(edge.src, []).append(edge)
            ins.setdefault(edge.dst, []).append(edge)

        def free(node: PlanNode) -> bool:
            steps = [self.by_id[s] for s in self.node_steps(node)]
            return (
                node.kind == "check"
                and bool(node.commands)
                and all(s.kind == "command" and not s.needs_approval for s in steps)
                and not any(_ASSIGNMENT.match(c.full) or _FOR_VARIABLE.match(c.full) for c in node.commands)
                and not _REFERS_BACK.search(node.text)
                and not any(re.search(r"\$\(|\$\{?\w", c.full) and self.assignments for c in node.commands)
            )

        nodes = plan.nodes
        index = 0
        while index < len(nodes):
            run = [nodes[index]]
            while True:
                tail = run[-1]
                edges = outs.get(tail.id, [])
                if len(edges) != 1 or edges[0].condition or edges[0].dst in (START, END):
                    break
                nxt = plan.node(edges[0].dst)
                if len(ins.get(nxt.id, [])) != 1 or not free(nxt) or not free(tail):
                    break
                run.append(nxt)
            if len(run) > 1:
                self.spread(run)
            index = nodes.index(run[-1]) + 1

    def node_steps(self, node: PlanNode) -> list[str]:
        first, last = self.first[node.id], self.last[node.id]
        ids = [s.id for s in self.steps]
        return ids[ids.index(first) : ids.index(last) + 1]

    def spread(self, run: list[PlanNode]) -> None:
        head = self.by_id[self.first[run[0].id]]
        base = list(head.needs)
        lasts = [self.last[n.id] for n in run]
        for node in run[1:]:
            first = self.by_id[self.first[node.id]]
            first.needs = list(base)
            first.gates = list(head.gates)
            first.comments.append("read-only check in document order: runs alongside its neighbours")
        for step in self.steps:  # whatever came after the last check waits for all of them
            if lasts[-1] in step.needs and step.id not in lasts and step.kind != "judge":
                step.needs = [*step.needs, *[x for x in lasts if x not in step.needs]]


def _template(command: Command) -> str:
    """The command on one line; its inputs as ``${{ inputs.X }}``, the guide's own variables as written."""
    names = {p.name for p in command.placeholders}

    def reference(match: re.Match[str]) -> str:
        raw = match.group("braced") or match.group("bare") or match.group("angle")
        name = input_name(raw)
        return f"${{{{ inputs.{name} }}}}" if name in names else match.group(0)

    return PLACEHOLDER.sub(reference, literal(re.sub(r"\s+", " ", command.text).strip()))


def _topological(steps: list[CompiledStep]) -> list[CompiledStep]:
    """Steps in dependency order, otherwise in the order they were made (the guide's)."""
    placed: set[str] = set()
    ordered: list[CompiledStep] = []
    remaining = list(steps)
    while remaining:
        for index, step in enumerate(remaining):
            if all(n in placed for n in step.needs):
                ordered.append(step)
                placed.add(step.id)
                del remaining[index]
                break
        else:  # a cycle cannot happen (edges only go forward); keep everything anyway
            ordered.extend(remaining)
            break
    return ordered


def compile_guide(guide: Guide, plan: Plan | None = None) -> CompiledGuide:
    """Compile a parsed guide into a workflow that follows its plan (``CompiledGuide.to_yaml()``)."""
    if plan is None:
        plan = build_plan("\n".join(guide.lines), guide.source)
        _adopt_llm_commands(guide, plan)
    compiler = _Compiler(guide, plan)
    compiler.run()
    name = _slug(guide.title, 60).replace("_", "-")
    return CompiledGuide(guide, name, compiler.steps, compiler.inputs, plan=plan)


def _adopt_llm_commands(guide: Guide, plan: Plan) -> None:
    """Commands ``--llm`` proposed for prose-only steps, on the plan step at the same lines."""
    from .guide_commands import classify_text

    for step in guide.root.walk():
        for command in step.commands:
            if command.origin != "llm":
                continue
            node = next((n for n in plan.nodes if n.first <= step.line <= n.last and not n.commands), None)
            if node is None:
                continue
            language = command.language if command.language in ("shell", "sql", "promql") else "shell"
            node.commands.append(
                GuideCommand(
                    step.line,
                    command.text,
                    command.text,
                    language,
                    classify_text(command.text, language),
                    "local",
                    origin="llm",
                )
            )
