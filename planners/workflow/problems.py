"""``Problem`` (one thing wrong with a workflow file, with where) and ``WorkflowFileError``.

A problem carries file, line, column and step separately, so the CLI can print it, an
editor can underline it, and tests can assert on each part without parsing text.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator import WorkflowError

__all__ = ["Problem", "WorkflowFileError", "did_you_mean"]

#: What ``Problem.__str__`` prints for a workflow that came from a string, not a file.
UNNAMED_SOURCE = "<workflow>"


@dataclass(frozen=True)
class Problem:
    """One problem in a workflow: ``flow.yaml:12:5: step 'fetch': unknown tool 'fecth' (…)``.

    ``line`` and ``column`` are 1-based, as editors and compilers print them; either is
    ``None`` when unknown (a workflow built in Python has no lines).
    """

    file: str | None
    line: int | None
    column: int | None
    step: str | None
    message: str
    hint: str | None = None
    #: ``"warning"`` for what is allowed but likely wrong (``Workflow.warnings()``).
    severity: Literal["error", "warning"] = "error"

    @property
    def location(self) -> str:
        """``file:line:column`` with as much as is known (empty when nothing is)."""
        if self.line is None:
            return self.file or ""
        where = f"{self.file or UNNAMED_SOURCE}:{self.line}"
        return f"{where}:{self.column}" if self.column is not None else where

    def __str__(self) -> str:
        parts = [self.location] if self.location else []
        if self.step is not None:
            parts.append(f"step {self.step!r}")
        if self.severity == "warning":
            parts.append("warning")
        parts.append(f"{self.message} ({self.hint})" if self.hint else self.message)
        return ": ".join(parts)


def _sort_key(problem: Problem) -> tuple[str, int, int]:
    # Problems without a line (overrides from the command line) go first: they are about
    # the invocation, not a place in the file.
    return (problem.file or "", problem.line or 0, problem.column or 0)


class WorkflowFileError(WorkflowError):
    """A workflow file is wrong; ``problems`` lists every problem found, in file order.

    ``str()`` shows them all, one per line, so a user fixes them in one pass instead of
    one per run.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=_sort_key)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid workflow")

    def __reduce__(self) -> tuple[type[WorkflowFileError], tuple[list[Problem]]]:
        # Rebuild from the problems, not the rendered message (pickling across processes).
        return (type(self), (self.problems,))

    @property
    def file(self) -> str | None:
        """The file the problems are in (the first one's), if known."""
        return next((p.file for p in self.problems if p.file), None)


def did_you_mean(name: str, options: Sequence[str] | Iterable[str]) -> str | None:
    """``"did you mean 'retries'?"`` for the closest option to a misspelled ``name``."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
