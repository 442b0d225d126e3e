"""The ``ask`` part of an HTML report: the request, the answer (or why there is none), every
model call and every plan, built from the events of the ask.

It is built from events, not from an ``AskResult``, so that a failed ask (no result, a
``PlannerError``) is reported as fully as a successful one. Everything shown came from a
model or a server and is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from orchestrator import Event, TaskAdded

from .context import to_plan_notation
from .events import JoinerDecided, PlannerCallEnded, PlanRejected

__all__ = ["ask_section", "with_ask_section"]

_STYLE = (
    "<style>.ask table{border-collapse:collapse;font-size:.9em}.ask td,.ask th{border:1px solid #ccc;"
    "padding:2px 6px;text-align:left}.ask pre{white-space:pre-wrap}</style>"
)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}s"


def ask_section(request: str, answer: str | None, error: str | None, events: Iterable[Event]) -> str:
    """An HTML ``<section>`` describing one ask."""
    events = list(events)
    rows = []
    for event in events:
        if isinstance(event, PlannerCallEnded):
            u = event.usage
            tokens = (
                (str(u.prompt_tokens), str(u.completion_tokens)) if u.reported else ("unknown", "unknown")
            )
            cells = (
                u.kind, u.response_format, *tokens, _seconds(u.first_token_seconds), _seconds(u.seconds),
                u.retries, u.max_tokens if u.max_tokens is not None else "", u.finish_reason or "",
                u.transport_error or "",
            )  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    head = (
        "<tr><th>call</th><th>format</th><th>prompt tokens</th><th>completion tokens</th>"
        "<th>first token</th><th>duration</th><th>retries</th><th>max_tokens</th><th>finish</th>"
        "<th>transport</th></tr>"
    )
    planned = [
        f"{e.task.id} = {e.task.tool}({json.dumps(to_plan_notation(e.task.args), default=str)})"
        + (f" after {', '.join(sorted(e.task.dependencies))}" if e.task.dependencies else "")
        for e in events
        if isinstance(e, TaskAdded)
    ]
    rejected = [f"{e.call}: {'; '.join(e.problems)}" for e in events if isinstance(e, PlanRejected)]
    decisions = [
        f"{e.decision.action}: {e.decision.reason or e.decision.answer}"
        for e in events
        if isinstance(e, JoinerDecided)
    ]
    parts = [
        f'<section class="ask" id="ask">{_STYLE}<h2>Ask</h2>',
        f"<h3>Request</h3><pre>{_esc(request)}</pre>",
        f"<h3>Answer</h3><pre>{_esc(answer) if answer else '(no answer)'}</pre>",
    ]
    if error:
        parts.append(f'<h3>Error</h3><pre class="error">{_esc(error)}</pre>')
    parts.append(f"<h3>Model calls ({len(rows)})</h3><table>{head}{''.join(rows)}</table>")
    parts.append(f"<h3>Plan ({len(planned)} tasks)</h3><pre>{_esc(chr(10).join(planned) or '(none)')}</pre>")
    if rejected:
        parts.append(f"<h3>Rejected answers</h3><pre>{_esc(chr(10).join(rejected))}</pre>")
    if decisions:
        parts.append(f"<h3>Joiner</h3><pre>{_esc(chr(10).join(decisions))}</pre>")
    parts.append("</section>")
    return "".join(parts)


def with_ask_section(page: str, section: str) -> str:
    """``page`` (a run report) with ``section`` first in its main part (or before ``</body>``)."""
    for marker in ("<main>", "</body>"):
        at = page.find(marker)
        if at >= 0:
            at += len(marker) if marker == "<main>" else 0
            return page[:at] + section + page[at:]
    return page + section
