"""TSG → workflow: the step tree becomes a workflow whose independent checks run in parallel.

Ordering follows what the commands *do*, as a compiler orders instructions by their
hazards: read-only checks after the same point may run at once; a mutating (or
interactive) step waits for every check before it and every later step waits for it; a
step that reads an earlier step's output ("look at the output above") or is gated by a
condition on it waits for that step. Sub-steps start after their parent's own commands.

Conditions become ``tsg_judge`` steps and the steps they gate get ``when`` on its verdict
(``not`` for "otherwise"); everything inside a gated step inherits the gate, so a skipped
branch skips as a whole. A step after a branch waits for it with ``join: any`` plus the
judge (an OR-join): it runs whichever way the branch went. "Repeat until" becomes one
``tsg_repeat`` step with a bounded number of iterations — never a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .commands import Command
from .compiled import CompiledGuide, CompiledStep, Gate
from .conditions import Condition, Jump
from .literal import literal
from .steps import Guide, GuideStep

__all__ = ["compile_guide"]

_SUMMARY_AFTER = re.compile(
    r"\b(none of the above|above steps|these (?:troubleshooting )?steps|previous steps)\b", re.I
)


def _slug(text: str, limit: int = 32) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower().replace("`", "")).strip("_")
    slug = slug[:limit].rstrip("_") or "step"
    return slug if slug[0].isalpha() else f"s_{slug}"


@dataclass
class _Tracker:
    """Hazard ordering in one scope: reads after the last barrier run together."""

    barrier: list[str]
    readers: list[str] = field(default_factory=list)

    def deps(self, effect: str) -> list[str]:
        return list(self.barrier) if effect == "read" else self.barrier + self.readers

    def record(self, ids: list[str], effect: str) -> None:
        if not ids:
            return
        if effect == "read":
            self.readers.extend(ids)
        else:
            self.barrier, self.readers = list(ids), []


@dataclass
class _Assigned:
    condition: Condition
    source: GuideStep
    negated: bool


class _Compiler:
    def __init__(self, guide: Guide) -> None:
        self.guide = guide
        self.steps: list[CompiledStep] = []
        self.by_id: dict[str, CompiledStep] = {}
        self.emitted_commands: list[tuple[Command, str]] = []
        self.last_command: dict[int, str] = {}
        self.judges: dict[tuple[str, int], str] = {}
        self.assigned: dict[int, list[_Assigned]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}

    # -- steps ---------------------------------------------------------------------------

    def add(self, step: CompiledStep, deps: list[str], gates: list[Gate]) -> str:
        base = step.id
        counter = 2
        while step.id in self.by_id:
            step.id = f"{base}_{counter}"
            counter += 1
        needs: list[str] = []
        join = "all"
        for dep in deps:
            if dep not in needs:
                needs.append(dep)
        for dep in list(needs):
            foreign = [g for g in self.by_id[dep].gates if g not in gates]
            if foreign:  # `dep` may be skipped while this step should run: OR-join on its judge
                join = "any"
                if foreign[0][0] not in needs:
                    needs.append(foreign[0][0])
        step.needs, step.gates, step.join = needs, list(gates), join
        self.steps.append(step)
        self.by_id[step.id] = step
        return step.id

    def judge(self, condition: Condition, deps: list[str], gates: list[Gate], evidence: str | None) -> str:
        key = (condition.text, condition.line)
        if key in self.judges:
            return self.judges[key]
        args: dict[str, Any] = {"condition": literal(condition.text), "guide_line": condition.line}
        if evidence is not None:
            args["evidence"] = f"${{{{ steps.{evidence}.output }}}}"
        decided = "an LLM judge if configured, else the operator"
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
        deps = deps + ([evidence] if evidence else [])
        judge_id = self.add(step, deps, gates)
        self.judges[key] = judge_id
        return judge_id

    def command_step(self, node: GuideStep, command: Command, deps: list[str], gates: list[Gate]) -> str:
        for placeholder in command.placeholders:
            self.declare(placeholder.name, command)
        if command.language == "sql":
            self.declare_database()
        comment = [f"guide line {command.line}: {command.text.splitlines()[0][:90]}"]
        comment.append(f"{command.effect}: {command.classification.reason}")
        if command.origin == "llm":
            comment.append("proposed by the LLM (--llm) for a prose-only step: review it")
        if command.effect == "session":
            args = {
                "instruction": "Run this yourself (it keeps running or needs a person): "
                + command.template(),  # template() keeps the guide's text literal
                "command": command.template(),
                "guide_line": command.line,
            }
            step = CompiledStep(
                _slug(node.title),
                "tsg_manual",
                args,
                "manual",
                command.line,
                node.title,
                command=command,
                comments=comment,
            )
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
                comments=comment,
            )
        step_id = self.add(step, deps, gates)
        self.emitted_commands.append((command, step_id))
        return step_id

    def declare_database(self) -> None:
        """The ``database`` input of SQL steps, with the front matter's default when it gives one."""
        if "database" in self.inputs:
            return
        entry: dict[str, Any] = {"type": "string", "description": "SQLite file the guide's SQL runs against"}
        defaults = self.guide.front_matter.get("inputs")
        if isinstance(defaults, dict) and defaults.get("database") is not None:
            entry["default"] = str(defaults["database"])
        self.inputs["database"] = entry

    def declare(self, name: str, command: Command) -> None:
        if name in self.inputs:
            return
        note = self.guide.root.notes.get(name) or next(
            (s.notes[name] for s in self.guide.root.walk() if name in s.notes), None
        )
        raw = next(p.raw for p in command.placeholders if p.name == name)
        entry: dict[str, Any] = {
            "type": "string",
            "description": note or f"{raw} in the guide (line {command.line})",
        }
        defaults = self.guide.front_matter.get("inputs")
        if isinstance(defaults, dict) and name in defaults:
            entry["default"] = str(defaults[name])
        self.inputs[name] = entry

    # -- evidence and gates -----------------------------------------------------------------

    def evidence(self, condition: Condition, fallback: str | None) -> str | None:
        for code in re.findall(r"`([^`]+)`", condition.text):
            for command, step_id in reversed(self.emitted_commands):
                if command.text.startswith(code) or f" {code}" in command.text:
                    return step_id
        return fallback

    def assign_jumps(self, node: GuideStep) -> None:
        numbered = {c.number: c for c in node.children if c.number is not None}
        everything = self.guide.root.walk()
        for index, child in enumerate(node.children):
            for jump in child.jumps:
                if jump.condition is None:
                    continue
                if jump.step is not None and not jump.back:
                    target = numbered.get(jump.step)
                    if target is None or target.line <= child.line:
                        continue
                    start = node.children.index(target)
                    between = node.children[index + 1 : start]
                    # When the skipped-over path ends ("stop here"), everything from the target on
                    # is on the jump's path only; otherwise both paths meet at the target.
                    path = node.children[start:] if any(b.ends for b in between) else [target]
                    for step in path:
                        self.assigned.setdefault(id(step), []).append(_Assigned(jump.condition, child, False))
                    for step in between:
                        self.assigned.setdefault(id(step), []).append(_Assigned(jump.condition, child, True))
                elif jump.section is not None:
                    wanted = jump.section.lower()
                    target = next(
                        (
                            s
                            for s in everything
                            if s.anchor == wanted or s.title.lower().rstrip(":") == wanted
                        ),
                        None,
                    )
                    if target is not None and target.line > child.line and target.condition is None:
                        self.assigned.setdefault(id(target), []).append(
                            _Assigned(jump.condition, child, False)
                        )

    # -- the tree ------------------------------------------------------------------------

    def emit(self, node: GuideStep, base: list[str], gates: list[Gate], context: str | None) -> list[str]:
        """Emit ``node`` and its sub-steps after ``base``; return every id emitted."""
        emitted: list[str] = []
        if node.condition is not None and node.kind != "guide":
            judge = self.judge(node.condition, base, gates, self.evidence(node.condition, context))
            emitted.append(judge)
            gates, base = [*gates, (judge, node.otherwise)], [judge]
        for assigned in self.assigned.get(id(node), []):
            source = self.last_command.get(id(assigned.source))
            judge = self.judge(assigned.condition, base, gates, self.evidence(assigned.condition, source))
            if judge not in emitted:
                emitted.append(judge)
            gates, base = [*gates, (judge, assigned.negated)], [*base, judge]
        tracker = _Tracker(list(base))
        own: list[str] = []
        if node.repeat is not None and node.commands:
            own.append(self.repeat_step(node, tracker.deps("write"), gates))
            tracker.record(own[-1:], "write")
        else:
            for command in node.commands:
                effect = "write" if command.effect == "session" else command.effect
                own.append(self.command_step(node, command, tracker.deps(effect), gates))
                tracker.record(own[-1:], effect)
        leaf = not node.children or not any(_has_action(c) for c in node.children)
        if not node.commands and leaf and node.kind != "guide":
            numbered = node.kind == "labelled" or node.number is not None
            if _has_action(node) or numbered or self.assigned.get(id(node)):
                own.append(self.manual_step(node, tracker.deps("read"), gates, context))
        if own:
            self.last_command[id(node)] = own[-1]
            context = own[-1]
        emitted.extend(own)
        if not leaf or node.commands:
            tracker_children = _Tracker(tracker.deps("write") if own else base)
            emitted.extend(self.emit_children(node, tracker_children, gates, context))
        return emitted

    def emit_children(
        self, node: GuideStep, tracker: _Tracker, gates: list[Gate], context: str | None
    ) -> list[str]:
        self.assign_jumps(node)
        emitted: list[str] = []
        previous: list[str] = []
        # Steps behind the same condition form a sequence of their own; steps behind different
        # conditions are alternatives ("my pod stays pending" / "… waiting") and do not wait for
        # each other. Each branch orders its steps from where the branches split.
        branch_trackers: dict[tuple[tuple[str, int, bool], ...], _Tracker] = {}
        branch_exits: set[str] = set()
        loops = self.back_jumps(node)
        skip_until = -1
        for index, child in enumerate(node.children):
            if index <= skip_until:
                continue
            if index in loops:
                end, jump = loops[index]
                skip_until = end
                group = node.children[index : end + 1]
                effect = "write" if any(g.effect() != "read" for g in group) else "read"
                assert jump.condition is not None
                loop = self.loop_step(
                    child.title, child.line, group, jump.condition, jump.max_iterations or 3, jump.interval_s or 1.0, True,
                    tracker.deps(effect), gates,
                )  # fmt: skip
                tracker.record([loop], effect)
                emitted.append(loop)
                previous = [loop]
                continue
            effect = child.effect()
            key = self.gate_key(child)
            summary = child.condition is not None and _SUMMARY_AFTER.search(child.condition.text)
            scope = tracker
            if key and not summary:
                if key not in branch_trackers:
                    readers = [r for r in tracker.readers if r not in branch_exits]
                    branch_trackers[key] = _Tracker(list(tracker.barrier), readers)
                scope = branch_trackers[key]
            deps = tracker.deps("write") if summary else scope.deps(effect)
            if child.refers_back and previous and not child.parallel and not summary:
                deps = deps + previous
            child_context = self.last_command.get(id(node)) or context
            if previous and child.refers_back:
                child_context = next(
                    (i for i in reversed(previous) if self.by_id[i].kind != "judge"), child_context
                )
            ids = self.emit(child, deps, gates, child_context)
            exits = self.exits(ids)
            if scope is not tracker:
                scope.record(exits, effect)
                tracker.record(exits, "read")  # later writes outside the branch still wait for it
                branch_exits.update(exits)
            else:
                tracker.record(exits, effect)
                for other in branch_trackers.values():
                    other.record(exits, effect)
            emitted.extend(ids)
            if ids:
                previous = exits
        return emitted

    def gate_key(self, node: GuideStep) -> tuple[tuple[str, int, bool], ...]:
        keys = [(a.condition.text, a.condition.line, a.negated) for a in self.assigned.get(id(node), [])]
        if node.condition is not None:
            keys.insert(0, (node.condition.text, node.condition.line, node.otherwise))
        return tuple(keys)

    def exits(self, ids: list[str]) -> list[str]:
        inside = set(ids)
        needed = {n for i in ids for n in self.by_id[i].needs if n in inside}
        return [i for i in ids if i not in needed]

    def manual_step(self, node: GuideStep, deps: list[str], gates: list[Gate], context: str | None) -> str:
        text = " ".join(s.text for s in node.walk()) or node.title
        text = re.sub(r"\s+", " ", text).strip()
        args: dict[str, Any] = {"instruction": literal(text[:600]), "guide_line": node.line}
        if context is not None and node.refers_back:
            args["evidence"] = f"${{{{ steps.{context}.output }}}}"
            deps = [*deps, context]
        step = CompiledStep(
            _slug(node.title),
            "tsg_manual",
            args,
            "manual",
            node.line,
            node.title,
            comments=[f"guide line {node.line}: prose only, done by a person: {node.title[:70]}"],
        )
        return self.add(step, deps, gates)

    def repeat_step(self, node: GuideStep, deps: list[str], gates: list[Gate]) -> str:
        assert node.repeat is not None
        repeat = node.repeat
        return self.loop_step(
            node.title,
            node.line,
            [node],
            repeat.until,
            repeat.max_iterations,
            repeat.interval_s,
            False,
            deps,
            gates,
        )

    def loop_step(
        self,
        title: str,
        line: int,
        nodes: list[GuideStep],
        condition: Condition,
        max_iterations: int,
        interval_s: float,
        repeat_while: bool,
        deps: list[str],
        gates: list[Gate],
    ) -> str:
        """One ``tsg_repeat`` step running the nodes' commands in order, at most ``max_iterations`` times."""
        commands = [c for n in nodes for c in n.commands if c.effect != "session"]
        body = []
        for command in commands:
            for placeholder in command.placeholders:
                self.declare(placeholder.name, command)
            if command.language == "sql":
                self.declare_database()
            body.append({"tool": command.tool, "args": command.tool_args()})
        args: dict[str, Any] = {
            "body": body,
            "until": literal(condition.text),
            "max_iterations": max_iterations,
            "interval_s": interval_s,
            "guide_line": condition.line,
        }
        if repeat_while:
            args["repeat_while"] = True
        if condition.test is not None:
            args["test"] = condition.test.as_args()
        verb = "while" if repeat_while else "until"
        step = CompiledStep(
            f"repeat_{_slug(title, 24)}",
            "tsg_repeat",
            args,
            "repeat",
            line,
            title,
            needs_approval=any(c.effect != "read" for c in commands),
            body=commands,
            comments=[
                f"guide line {condition.line}: repeat {verb} {condition.text!r}, at most "
                f"{max_iterations} times (a bounded loop, not a cycle)"
            ],
        )
        step_id = self.add(step, deps, gates)
        for node in nodes:
            self.last_command[id(node)] = step_id
        for command in commands:
            self.emitted_commands.append((command, step_id))
        return step_id

    def back_jumps(self, node: GuideStep) -> dict[int, tuple[int, Jump]]:
        """Loops a numbered sequence states: start index → (end index, the jump back)."""
        index_of = {c.number: i for i, c in enumerate(node.children) if c.number is not None}
        loops: dict[int, tuple[int, Jump]] = {}
        for end, child in enumerate(node.children):
            for jump in child.jumps:
                if jump.step is None or jump.condition is None or jump.step not in index_of:
                    continue
                start = index_of[jump.step]
                if start <= end and (jump.back or start < end or child.number == jump.step):
                    loops[start] = (end, jump)
        return loops


def _has_action(step: GuideStep) -> bool:
    return any(s.commands or s.imperative or s.condition is not None or s.jumps for s in step.walk())


def compile_guide(guide: Guide) -> CompiledGuide:
    """Compile a parsed guide into a workflow (``CompiledGuide.to_yaml()`` / ``.workflow()``)."""
    compiler = _Compiler(guide)
    compiler.emit(guide.root, [], [], None)
    name = _slug(guide.title, 60).replace("_", "-")
    return CompiledGuide(guide, name, compiler.steps, compiler.inputs)
