"""The context a tool may ask for by declaring a first parameter typed ``ToolContext``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .prompter import Prompter, default_prompter

__all__ = ["ProgressReporter", "ToolContext"]

#: Called as ``progress(fraction, message)``; ``fraction`` is in [0, 1] or ``None`` if unknown.
ProgressReporter = Callable[[float | None, str], None]


def _no_progress(fraction: float | None, message: str) -> None:
    """Default reporter for calls made outside a run (tests, direct calls)."""


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a running tool may know about the call it serves.

    It is injected, never part of the tool's argument schema, so the model or the YAML
    author never sees it.
    """

    #: Id of the run this call belongs to.
    run_id: str = "local"
    #: Id of the task (step) being executed.
    task_id: str = "call"
    #: Attempt number, starting at 1; a retry increments it.
    attempt: int = 1
    #: Reports progress; safe to call from the tool's worker thread.
    report: ProgressReporter = field(default=_no_progress, repr=False)
    #: A logger whose records carry the run and task ids.
    logger: logging.LoggerAdapter[logging.Logger] = field(
        default_factory=lambda: logging.LoggerAdapter(logging.getLogger("stepweave.tools"), {}),
        repr=False,
    )
    #: Asks the operator (approvals, questions); it carries the command's ``--yes`` and
    #: ``--allow``. Outside a run: this process's terminal, approving nothing by itself.
    prompter: Prompter = field(default_factory=default_prompter, repr=False)

    @property
    def idempotency_key(self) -> str:
        """``"<run id>/<task id>"``: the same for every attempt of this task in this run,
        including a re-dispatch after the run is resumed from its journal.

        Hand it to a service that de-duplicates (an ``Idempotency-Key`` header, a unique
        column, a ``client_token``) so a repeated call cannot repeat the side effect.
        """
        return f"{self.run_id}/{self.task_id}"

    def progress(self, fraction: float | None = None, message: str = "") -> None:
        """Report progress of a long call (``fraction`` in [0, 1], or ``None`` if unknown)."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within [0, 1], got {fraction}")
        self.report(fraction, message)
