"""Approving steps: who may (``--yes``, ``--allow TOOL``, a person at the terminal), what
needs no one (in ``ask``: a call that only reads), and a prompt that shows what will run.

The asking itself is the run's ``tools.Prompter`` (one per command, also handed to the
tools as ``ctx.prompter``: the ``approve`` tool, a runbook's operator questions), so
``--yes`` reaches every gate the same way and one question is on the terminal at a time.

``run``, ``tsg run`` and ``ask`` share this. A workflow's or runbook's gates were written
by its author, so every gated step is asked about. A model's plan is untrusted input, so
``ask`` gates every call that may change something (``planners.llm`` marks them) and this
policy lets through, without asking, the ones that are read-only for the arguments they
will run with (the scheduler hands the approver the rendered arguments). ``ask`` also
keeps the process environment to itself: a ``shell`` call may pass through only the
harmless default variables and those named with ``--allow-env``, whoever approves.

The prompt shows untrusted text (step id, tool, arguments) literally: no Rich markup is
interpreted (``[conceal]`` would hide the dangerous half of a command) and no terminal
control sequence reaches the terminal (each becomes a visible ``\\x1b``-style escape).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from tools import Prompter, ToolRegistry
from tools.builtin import DEFAULT_ENV_PASSTHROUGH

from ..console import ProgressView
from ..graph import Task
from ..terminal_text import escape_control

__all__ = ["Approval", "ApprovalPolicy", "approval_question", "describe_arguments", "parse_allowed"]

#: Characters of a call's arguments shown in a prompt; the rest is counted, not hidden silently.
SHOWN_CHARACTERS = 4000


@dataclass(frozen=True)
class ApprovalPolicy:
    """What may run without asking a person, and what may not run at all.

    Attributes:
        yes: approve every step (``--yes``).
        allow_tools: tools whose steps are approved (``--allow TOOL``).
        read_only: when set (``ask``), a call that this registry's tool declares read-only
            for its arguments is approved without asking.
        allow_env: when set (``ask``), the environment variables a ``shell`` step may pass
            through beyond the harmless defaults; any other is refused, even with ``yes``.
        suggest_allow: the command has ``--allow`` (say so when there is no terminal).
    """

    yes: bool = False
    allow_tools: frozenset[str] = frozenset()
    read_only: ToolRegistry | None = None
    allow_env: frozenset[str] | None = None
    suggest_allow: bool = False

    def refusal(self, task: Task, args: Mapping[str, Any]) -> str | None:
        """Why this call may not run whoever approves it; ``None`` when it may."""
        if self.allow_env is None:
            return None
        allowed = self.allow_env.union(DEFAULT_ENV_PASSTHROUGH)
        blocked = sorted(name for name in _passed_env(task.tool, args) if name not in allowed)
        if not blocked:
            return None
        flags = " ".join(f"--allow-env {name}" for name in blocked)
        return (
            f"step {task.id!r} ({task.tool}) would pass the environment variable(s) "
            f"{', '.join(blocked)} to the program: refused (pass {flags} to let them through)"
        )

    def approves(self, task: Task, args: Mapping[str, Any]) -> bool:
        """Whether the call is approved without asking anyone."""
        if self.yes or task.tool in self.allow_tools:
            return True
        registry = self.read_only
        return registry is not None and task.tool in registry and registry.get(task.tool).is_read_only(args)

    def unattended(self, task: Task) -> str:
        """Why the step is refused when there is no terminal to ask, and how to allow it."""
        return self.prompter().unattended(task.id, task.tool)

    def prompter(self, console: Console | None = None, view: ProgressView | None = None) -> Prompter:
        """The prompter that asks for this policy: ``--yes`` and ``--allow`` travel in it."""
        return Prompter(
            yes=self.yes,
            allow_tools=self.allow_tools,
            console=console,
            view=view,
            suggest_allow=self.suggest_allow,
        )


def _passed_env(tool: str, args: Mapping[str, Any]) -> list[str]:
    """The parent environment variables a call passes to its program (``shell``'s ``env``)."""
    if tool != "shell":
        return []
    names = args.get("env")
    if names is None:
        return []  # the tool's harmless defaults
    if isinstance(names, (list, tuple)):
        return [str(name) for name in names]
    return [str(names)]  # not a list: the tool rejects it, but never let it through here


def describe_arguments(args: Mapping[str, Any], limit: int = SHOWN_CHARACTERS) -> str:
    """The arguments as one line of JSON safe to show: controls escaped, long ones cut visibly."""
    text = escape_control(json.dumps(dict(args), default=str, ensure_ascii=False), multiline=False)
    if len(text) > limit:
        text = (
            f"{text[:limit]} ... ({len(text) - limit} more characters not shown; refuse unless you know them)"
        )
    return text


def approval_question(task: Task, args: Mapping[str, Any]) -> Text:
    """``Step ID (TOOL ARGS) needs approval. Run it?`` as a ``Text``: never read as markup."""

    def literal(value: str) -> str:
        return escape_control(value, multiline=False)

    return Text.assemble(
        "Step ",
        (literal(task.id), "bold"),
        f" ({literal(task.tool)} {describe_arguments(args)}) needs approval. Run it?",
    )


@dataclass
class Approval:
    """The ``approver`` of a command's runs: applies the policy, asks through ``prompter``.

    Give the same ``prompter`` to the ``Orchestrator`` (``prompter=approval.prompter``) so
    the tools' questions share its options and its one-at-a-time terminal. ``refused``
    keeps the reason for every step that was not approved, for the command's exit status.
    """

    policy: ApprovalPolicy
    console: Console
    view: ProgressView | None = None
    refused: list[str] = field(default_factory=list)
    prompter: Prompter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.prompter = self.policy.prompter(self.console, self.view)

    async def __call__(self, task: Task, args: Mapping[str, Any]) -> bool:
        policy = self.policy
        refusal = policy.refusal(task, args)
        if refusal is not None:
            return self._refuse(task, refusal)
        if policy.approves(task, args):
            return True
        decision = await self.prompter.approve(approval_question(task, args), step=task.id, tool=task.tool)
        if decision.approved:
            return True
        if decision.by == "nobody":
            return self._refuse(task, decision.reason)
        self.refused.append(decision.reason)  # the person at the terminal saw it already
        return False

    def _refuse(self, task: Task, reason: str) -> bool:
        self.refused.append(reason)
        self.console.print(Text(escape_control(reason)), highlight=False, soft_wrap=True)
        return False


def parse_allowed(names: Iterable[str] | None) -> frozenset[str]:
    """Repeatable ``--allow``/``--allow-env`` values; commas also separate names."""
    return frozenset(part.strip() for name in names or () for part in name.split(",") if part.strip())
