"""The tools a compiled guide calls besides shell/sql/queries: ``tsg_judge``, ``tsg_manual``, ``tsg_repeat``.

They are built per run (``tsg_tools``) around a ``ConditionJudge`` because how conditions
are decided (LLM, terminal, ``--yes``) is a property of the run, not of the guide. The
operator is asked through the run's prompter (``ctx.prompter``): the same service, and the
same one-at-a-time terminal, as the approvals of the run's commands.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, Field

from tools import Tool, ToolContext, ToolError, ToolRegistry

from .judge import ConditionJudge, Judgement, OperatorAsk

__all__ = ["ManualResult", "RepeatResult", "tsg_tools"]


def _operator(ctx: ToolContext) -> OperatorAsk:
    """The run's prompter as an operator: asks about this step; ``None`` when nobody can answer."""

    async def ask(question: str) -> bool | None:
        return await ctx.prompter.ask(question, step=ctx.task_id)

    return ask


class ManualResult(BaseModel):
    """What became of a step only a person can do."""

    performed: bool = Field(description="True when the operator confirmed doing it.")
    by: Literal["operator", "nobody"] = Field(description="Who answered.")
    instruction: str


class RepeatResult(BaseModel):
    """A bounded loop's outcome."""

    iterations: int
    satisfied: bool
    judgement: Judgement
    outputs: list[Any] = Field(description="Each iteration's output of the last body command.")


def tsg_tools(judge: ConditionJudge, registry: ToolRegistry, manual: OperatorAsk | None = None) -> list[Tool]:
    """The three tools, bound to ``judge`` (conditions), ``registry`` (loop bodies), ``manual``
    (asks whether a step was done by hand; default: the run's prompter)."""

    async def tsg_judge(
        ctx: ToolContext,
        condition: str,
        guide_line: int = 0,
        evidence: Any = None,
        test: dict[str, Any] | None = None,
    ) -> Judgement:
        """Decide one of the guide's conditions (test, LLM judge, operator, in that order).

        Args:
            condition: The condition as the guide words it.
            guide_line: Where the guide states it.
            evidence: Output of the step the condition is about.
            test: A measurable reading: {kind: threshold|contains, op, value}.
        """
        return await judge.decide(condition, evidence, test, guide_line, _operator(ctx))

    async def tsg_manual(
        ctx: ToolContext,
        instruction: str,
        guide_line: int = 0,
        command: str | None = None,
        evidence: Any = None,
    ) -> ManualResult:
        """A step a person does (prose-only, or a command that needs a terminal); asks if done.

        Args:
            instruction: What the guide says to do.
            guide_line: Where the guide says it.
            command: A command to run by hand, if any.
            evidence: Output of an earlier step the instruction refers to.
        """
        operator = manual if manual is not None else _operator(ctx)
        shown = f"\n  $ {command}" if command else ""
        answer = await operator(f"[guide line {guide_line}] {instruction}{shown}\nDone?")
        if answer is not None:
            return ManualResult(performed=answer, by="operator", instruction=instruction)
        return ManualResult(performed=False, by="nobody", instruction=instruction)

    async def tsg_repeat(
        ctx: ToolContext,
        body: list[dict[str, Any]],
        until: str,
        max_iterations: int = 5,
        interval_s: float = 1.0,
        guide_line: int = 0,
        test: dict[str, Any] | None = None,
        repeat_while: bool = False,
    ) -> RepeatResult:
        """Run the body's tool calls in order until a condition holds, at most max_iterations times.

        Args:
            body: Tool calls, each {tool, args}; their output goes to the condition.
            until: The condition that ends the loop.
            max_iterations: Upper bound on iterations (the loop never runs forever).
            interval_s: Pause between iterations, as the guide asks ("every 10 seconds").
            guide_line: Where the guide states the loop.
            test: A measurable reading of the condition.
            repeat_while: Loop while the condition holds instead (a guide's "if X, go back to step 2").
        """
        if not body or max_iterations < 1:
            raise ToolError("tsg_repeat needs a body and max_iterations >= 1", retryable=False)
        outputs: list[Any] = []
        verdict: Judgement | None = None
        for iteration in range(1, max_iterations + 1):
            output: Any = None
            for call in body:
                tool = registry.get(str(call["tool"]))
                result = await tool.invoke(call.get("args", {}), ctx)
                output = result.model_dump() if isinstance(result, BaseModel) else result
            outputs.append(output)
            verdict = await judge.decide(until, output, test, guide_line, _operator(ctx))
            if verdict.holds != repeat_while:
                return RepeatResult(iterations=iteration, satisfied=True, judgement=verdict, outputs=outputs)
            if iteration < max_iterations:
                # The guide's own pacing ("check every 10 seconds"), between real attempts.
                await asyncio.sleep(interval_s)
        raise ToolError(
            f"guide line {guide_line}: {until!r} still {'true' if repeat_while else 'not true'} "
            f"after {max_iterations} iterations" + (f" (last: {verdict.reason})" if verdict else ""),
            retryable=False,
        )

    return [
        Tool.from_function(tsg_judge, name="tsg_judge", retries=0),
        Tool.from_function(tsg_manual, name="tsg_manual", retries=0),
        Tool.from_function(tsg_repeat, name="tsg_repeat", retries=0),
    ]
