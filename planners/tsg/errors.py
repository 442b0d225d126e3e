"""``GuideError``: a troubleshooting guide that cannot be compiled, with file and line.

A definition error (``WorkflowError`` family): the SRE fixes the guide (or the command
line) before anything runs.
"""

from __future__ import annotations

from typing import Any

from orchestrator import WorkflowError

__all__ = ["GuideError"]


class GuideError(WorkflowError):
    """``guide.md:12: no steps found (…)``: what is wrong with a guide, and where."""

    def __init__(self, file: str | None, line: int | None, message: str, hint: str | None = None) -> None:
        self.file = file
        self.line = line
        self.message = message
        self.hint = hint
        where = file or "<guide>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}" + (f" ({hint})" if hint else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its parts (pickling across processes), not the rendered message.
        return (type(self), (self.file, self.line, self.message, self.hint), vars(self))
