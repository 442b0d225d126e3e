"""The results table: one ``Row`` per (metric, workload), rendered as markdown.

Kept apart from the measuring code so what a row means (value, target, verdict) is
decided where it is measured, and the table only formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Row", "render"]

COLUMNS = ("metric", "workload", "baseline", "stepweave", "ratio", "target", "pass/fail")


@dataclass(frozen=True, slots=True)
class Row:
    """One measured figure for both systems.

    ``passed`` is ``None`` for figures shown for information only. ``problems`` lists
    failed verifications or errors: such a row is INVALID whatever its numbers say.
    """

    metric: str
    workload: str
    baseline: float | None
    stepweave: float | None
    target: str
    passed: bool | None
    digits: int = 1
    stepweave_note: str = ""
    problems: tuple[str, ...] = ()

    @property
    def ratio(self) -> float | None:
        """stepweave / baseline: how many times the baseline's figure stepweave needs."""
        if self.baseline is None or self.stepweave is None or self.baseline <= 0:
            return None
        return self.stepweave / self.baseline

    @property
    def verdict(self) -> str:
        if self.problems:
            return "INVALID"
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "FAIL"

    def cells(self) -> list[str]:
        ratio = self.ratio
        stepweave = _number(self.stepweave, self.digits)
        if self.stepweave_note:
            stepweave += f" ({self.stepweave_note})"
        return [
            self.metric,
            self.workload,
            _number(self.baseline, self.digits),
            stepweave,
            "-" if ratio is None else f"{ratio:.2f}x",
            self.target,
            self.verdict,
        ]


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(rows: Sequence[Row]) -> str:
    """A markdown table with numbers right-aligned, then one line per invalid row."""
    table = [list(COLUMNS), *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    numeric = {2, 3, 4}

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in numeric else "-" * w for i, w in enumerate(widths)]
    out = [line(table[0]), line(rule), *(line(cells) for cells in table[1:])]
    for row in rows:
        for problem in row.problems:
            out.append(f"\nINVALID {row.metric} / {row.workload}: {problem}")
    return "\n".join(out)
