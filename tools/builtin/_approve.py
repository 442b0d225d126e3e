"""``approve``: a human gate, asked through the run's ``Prompter`` (``ctx.prompter``).

``--yes`` (or ``--allow approve``) on the command line approves it; otherwise a person at
the terminal answers y/N; with no terminal it fails, naming the step, instead of guessing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError

__all__ = ["Approval", "approve"]


class Approval(BaseModel):
    """A granted approval (a refusal fails the call instead)."""

    approved: bool = Field(description="Always true: a refusal raises an error.")
    by: Literal["yes", "allow", "terminal"] = Field(
        description="'yes' when --yes approved it, 'allow' when --allow approve did, "
        "'terminal' when a person answered."
    )
    message: str = Field(description="The question that was approved.")


@tool(name="approve", retries=0, read_only=True)
async def approve(ctx: ToolContext, message: str) -> Approval:
    """Ask a person to approve before the workflow continues; a refusal fails this step.

    On an interactive terminal it asks y/N. Without one it fails, unless the command's
    --yes approves every gate.

    Args:
        message: The question shown to the person, e.g. "Deploy build 42 to production?".
    """
    question = f"[{ctx.task_id}] {message}\nApprove?"
    decision = await ctx.prompter.approve(question, step=ctx.task_id, tool="approve")
    by = decision.by
    if by == "nobody":
        raise ToolError(f"approval needed for {message!r}: {decision.reason}", retryable=False)
    if not decision.approved:
        raise ToolError(f"not approved: {message!r}", retryable=False)
    ctx.logger.info("approve: %r approved (%s)", message, by)
    return Approval(approved=True, by=by, message=message)
