"""A run as one self-contained HTML page: header, DAG, timeline and per-task details.

The report is one more consumer of the event stream (the events ``Run.events()`` yields and
``--json`` prints). It is a single file with inline CSS, SVG and a few lines of JS (no CDN,
no fonts to fetch), so it opens offline, attaches to a ticket and screenshots well.
Everything here is a pure function of the graph, the result and the events, so the same run
always renders the same bytes.

Without events the timeline still shows each task's start to end; with them it also shows
time spent waiting for a slot, every failed attempt and the backoff before the next.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from .analysis import critical_path, layers
from .events import Event, RunResumed, TaskAdded, TaskEnded, TaskReady, TaskRetrying, TaskStarted
from .export import STATUS_COLORS, display_graph, item_parent
from .graph import Task, TaskGraph, TaskStatus
from .result import RunResult, TaskResult

__all__ = ["render_html", "write_html"]

#: Outputs longer than this (pretty-printed) are cut, so one huge value cannot bloat the page.
MAX_VALUE_CHARS = 10_000
#: Failed tasks open their details by default, up to this many (a mass failure stays readable).
MAX_OPEN_FAILED = 20

#: A for_each with more items than this is drawn as one box of small cells, not a node per item.
_MAX_ITEM_NODES = 12
#: Above this many rows the timeline packs its rows tighter.
_DENSE_ROWS = 60

_NODE_W, _NODE_H, _COL_GAP, _SUBCOL_GAP, _ROW_GAP, _PAD = 188, 48, 72, 24, 14, 8
#: Pixels a node's labels may take from x=18: the id stops short of the status dot (its left
#: edge at _NODE_W - 18), the tool line short of the box's right edge.
_ID_ROOM, _TOOL_ROOM = _NODE_W - 18 - 4 - 18, _NODE_W - 6 - 18
_CELL, _CELL_GAP, _CELL_PAD, _GROUP_HEAD = 11, 3, 18, 50


def _esc(value: object) -> str:
    """Escape for HTML text and quoted attributes alike (both quote kinds included)."""
    return html.escape(str(value), quote=True)


def _natural_key(task_id: str) -> tuple[str, int]:
    """Sort ``each[10]`` after ``each[9]``, not after ``each[1]``."""
    match = re.match(r"^(.*)\[([0-9]+)\]$", task_id)
    return (match.group(1), int(match.group(2))) if match else (task_id, -1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


#: Advance widths in em of a wide bold sans-serif (DejaVu Sans Bold, what Linux browsers
#: fall back to; narrower fonts only leave some room unused). Graph labels are cut to the
#: room the font takes, not to a count of characters: 21 letters of "step-12-restart-…"
#: already ran into the status dot, and 21 W's into the next node.
_EM = {
    **dict.fromkeys("ijlI.,:;'|!", 0.36),
    **dict.fromkeys("frt-()[]", 0.50),
    **dict.fromkeys("mwMW@%", 1.08),
    **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ&", 0.82),
    **dict.fromkeys("_ ", 0.52),
    "…": 1.0,
}


def _text_width(text: str, size: float, *, bold: bool) -> float:
    """An upper estimate of the rendered width of ``text`` in pixels (at font ``size``)."""
    ems = sum(_EM.get(char, 0.72 if char.isdigit() else 0.68) for char in text)
    return ems * size * (1.0 if bold else 0.92)


def _fit(text: str, room: float, size: float, *, bold: bool) -> str:
    """``text``, cut with an ellipsis where needed to fit ``room`` pixels."""
    if _text_width(text, size, bold=bold) <= room:
        return text
    cut = len(text)
    while cut > 1 and _text_width(text[:cut] + "…", size, bold=bold) > room:
        cut -= 1
    return text[:cut] + "…"


# -- formatting -------------------------------------------------------------------------


def _fmt_duration(seconds: float | None) -> str:
    """Human durations with about three significant digits: 0.42 ms, 120 ms, 1.25 s, 2m 05s."""
    if seconds is None:
        return "—"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _fmt_tick(value: float, step: float) -> str:
    """An axis label in the unit the step calls for, with no more decimals than it needs."""
    if step < 1:
        decimals = max(0, -math.floor(math.log10(step * 1000) + 1e-9))
        return f"{value * 1000:.{decimals}f} ms"
    if step < 60:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        return f"{value:.{decimals}f} s"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes}m" if secs == 0 else f"{minutes}m {secs:02d}s"


def _nice_step(span: float, target: int = 8) -> float:
    """A 1/2/5×10ⁿ step that cuts ``span`` into at most ``target`` intervals."""
    raw = span / target
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _fmt_json(value: Any) -> tuple[str, str | None]:
    """Pretty JSON (strings as they are, so multi-line text stays readable), plus a truncation note."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=False)
    if len(text) <= MAX_VALUE_CHARS:
        return text, None
    note = f"Truncated: showing the first {MAX_VALUE_CHARS:,} of {len(text):,} characters."
    return text[:MAX_VALUE_CHARS] + "\n…", note


# -- the model the page is drawn from ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Segment:
    """A stretch of one task's row: ``kind`` is a status, or ``wait``/``retry``/``backoff``."""

    kind: str
    start: float
    end: float
    note: str


@dataclass(frozen=True, slots=True)
class _Row:
    """One task as the page shows it."""

    id: str
    anchor: str
    task: Task | None
    result: TaskResult
    parent: str | None
    segments: tuple[_Segment, ...]
    #: The run's stops (crash to resume), for the step's own time.
    stops: tuple[_Stop, ...] = ()


@dataclass(frozen=True, slots=True)
class _Page:
    """Everything the sections need, computed once."""

    result: RunResult
    shown: TaskGraph
    rows: tuple[_Row, ...]
    start: float
    span: float
    critical: tuple[str, ...]
    by_id: Mapping[str, _Row]

    def pct(self, at: float) -> float:
        """Where ``at`` falls on the time axis, in percent."""
        return min(100.0, max(0.0, (at - self.start) / self.span * 100))

    def row(self, task_id: str) -> _Row:
        return self.by_id[task_id]


#: (last moment the run was seen alive, when it was resumed) for each stop of a resumed run.
_Stop = tuple[float, float]


def _stops(events: Sequence[Event]) -> tuple[_Stop, ...]:
    """Where a resumed run was down: from its last event before each ``RunResumed`` to it."""
    stops: list[_Stop] = []
    alive = None
    for event in events:
        if isinstance(event, RunResumed):
            if alive is not None:
                stops.append((alive, event.at))
        else:
            alive = event.at
    return tuple(stops)


def _segments(
    result: TaskResult, events: Sequence[Event], stops: Sequence[_Stop] = ()
) -> tuple[_Segment, ...]:
    """A task's attempts from its events, or one bar from its result when there are none.

    An attempt that was running when the orchestrator stopped (a crash, ``kill -9``) ends
    where the run was last seen alive, as a ``crash`` segment: the downtime until the
    resume is not the step's time.
    """
    segments: list[_Segment] = []
    open_kind, open_at, note = "", 0.0, ""
    for event in events:
        for alive, resumed in stops:
            if open_kind and open_at <= alive and resumed <= event.at:
                kind = "crash" if open_kind == "run" else open_kind
                if kind == "crash":
                    note = (
                        f"{note}: cut short, the run stopped; resumed {_fmt_duration(resumed - alive)} later"
                    )
                segments.append(_Segment(kind, open_at, alive, note))
                open_kind = ""
        if isinstance(event, TaskReady) and not open_kind:
            open_kind, open_at, note = "wait", event.at, "waiting for a free slot"
        elif isinstance(event, TaskStarted):
            if open_kind:
                segments.append(_Segment(open_kind, open_at, event.at, note))
            open_kind, open_at, note = "run", event.at, f"attempt {event.attempt}"
        elif isinstance(event, TaskRetrying):
            segments.append(_Segment("retry", open_at, event.at, f"attempt {event.attempt}: {event.error}"))
            open_kind, open_at = "backoff", event.at
            note = f"backoff {_fmt_duration(event.delay)} before attempt {event.attempt + 1}"
        elif isinstance(event, TaskEnded) and open_kind:
            kind = result.status.value if open_kind == "run" else open_kind
            segments.append(_Segment(kind, open_at, event.at, note))
            open_kind = ""
    if open_kind and result.ended_at is not None:  # a stream cut short: end it with the result
        kind = result.status.value if open_kind == "run" else open_kind
        segments.append(_Segment(kind, open_at, result.ended_at, note))
    if segments:
        return tuple(segments)
    if result.started_at is not None and result.ended_at is not None:
        return (_Segment(result.status.value, result.started_at, result.ended_at, "ran"),)
    return ()


def _results(shown: TaskGraph, result: RunResult) -> dict[str, TaskResult]:
    """A result per drawn task; one that never got one (a run cut short) shows as pending."""
    return {tid: result.tasks.get(tid) or TaskResult(id=tid, tool=shown[tid].tool) for tid in shown.tasks}


def _row_order(shown: TaskGraph, graph: TaskGraph, results: Mapping[str, TaskResult]) -> list[str]:
    """Top-level tasks by start time (a waterfall), each for_each's items right under it."""
    topo = {tid: i for i, tid in enumerate(tid for layer in layers(shown) for tid in layer)}
    items: dict[str, list[str]] = {}
    top: list[str] = []
    for tid in shown.tasks:
        parent = item_parent(tid, graph)
        if parent is None:
            top.append(tid)
        else:
            items.setdefault(parent, []).append(tid)

    def when(tid: str) -> tuple[bool, float, int]:
        r = results[tid]
        at = r.started_at if r.started_at is not None else r.ended_at
        return (at is None, at or 0.0, topo[tid])

    order: list[str] = []
    for tid in sorted(top, key=when):
        order.append(tid)
        order.extend(sorted(items.get(tid, ()), key=_natural_key))
    return order


def _critical(graph: TaskGraph, results: Mapping[str, TaskResult]) -> tuple[str, ...]:
    """The longest chain by measured time, over the graph as written (items excluded)."""
    written = TaskGraph(t for t in display_graph(graph) if item_parent(t.id, graph) is None)
    durations = {tid: r.duration or 0.0 for tid, r in results.items() if tid in written}
    path, length = critical_path(written, durations)
    return tuple(path) if length > 0 else ()


def _build(graph: TaskGraph, result: RunResult, events: Sequence[Event]) -> _Page:
    mine = [e for e in events if e.run_id == result.run_id]
    added = [e.task for e in mine if isinstance(e, TaskAdded)]
    shown = display_graph(graph, result, added)
    tasks = {t.id: t for t in added} | dict(graph.tasks)
    by_task: dict[str, list[Event]] = {}
    for event in mine:
        task_id = getattr(event, "task_id", None)
        if isinstance(task_id, str):
            by_task.setdefault(task_id, []).append(event)
    results = _results(shown, result)
    stops = _stops(mine)
    order = _row_order(shown, graph, results)
    rows = tuple(
        _Row(
            id=tid,
            anchor=f"task-{n}",
            task=tasks.get(tid),
            result=results[tid],
            parent=item_parent(tid, graph),
            segments=_segments(results[tid], by_task.get(tid, ()), stops),
            stops=stops,
        )
        for n, tid in enumerate(order, 1)
    )
    ends = [result.ended_at] + [s.end for r in rows for s in r.segments]
    ends += [r.result.ended_at for r in rows if r.result.ended_at is not None]
    span = max(max(ends) - result.started_at, 1e-6)
    critical = _critical(graph, results)
    return _Page(result, shown, rows, result.started_at, span, critical, {r.id: r for r in rows})


# -- header -----------------------------------------------------------------------------


def _status_css() -> str:
    """One ``.st-<status>`` rule per status, from the palette the exports share."""
    rules = (f".st-{s.value}{{--c:{c.stroke};--f:{c.fill};--t:{c.text}}}" for s, c in STATUS_COLORS.items())
    return "\n".join(rules)


def _render_header(page: _Page, title: str) -> str:
    result = page.result
    started = datetime.fromtimestamp(result.started_at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    counts: dict[TaskStatus, int] = {}
    for row in page.rows:
        counts[row.result.status] = counts.get(row.result.status, 0) + 1
    chips = "".join(
        f'<li class="chip st-{s.value}"><span class="dot"></span><b>{counts[s]}</b> {s.value}</li>'
        for s in TaskStatus
        if s in counts
    )
    facts = [
        ("Run", f"<code>{_esc(result.run_id)}</code>"),
        ("Started", _esc(started)),
        ("Duration", _esc(_fmt_duration(result.duration))),
        ("Tasks", str(len(page.rows))),
    ]
    if page.critical:
        total = sum(page.row(tid).result.duration or 0.0 for tid in page.critical)
        chain = " → ".join(page.critical)
        if len(page.critical) > 6:
            chain = f"{page.critical[0]} → … → {page.critical[-1]} ({len(page.critical)} tasks)"
        facts.append(("Critical path", f"{_esc(chain)} · {_esc(_fmt_duration(total))}"))
    facts_html = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
    error = ""
    if result.error:
        error = f'<div class="run-error" role="alert"><strong>Run {_esc(result.status.value)}:</strong>'
        error += f"<span>{_esc(result.error)}</span></div>"
    return (
        '<header class="run-head"><div class="eyebrow">stepweave run report</div>'
        f'<div class="title-row"><h1>{_esc(title)}</h1>'
        f'<span class="badge st-{result.status.value}" id="run-status">{result.status.value}</span>'
        f'</div><dl class="facts">{facts_html}</dl><ul class="counts">{chips}</ul>{error}</header>'
    )


# -- DAG --------------------------------------------------------------------------------


def _order_layers(shown: TaskGraph) -> list[list[str]]:
    """Layers with each ordered near its neighbours (barycentre sweeps) to cut crossings."""
    columns = [sorted(layer, key=_natural_key) for layer in layers(shown)]
    dependents = shown.dependents()
    position: dict[str, float] = {}

    def place(column: list[str]) -> None:
        for i, tid in enumerate(column):
            position[tid] = (i + 0.5) / len(column)

    for column in columns:
        place(column)
    for _ in range(2):
        for column in columns[1:]:
            column.sort(key=lambda t: _mean([position[d] for d in shown[t].deps], position[t]))
            place(column)
        for column in reversed(columns[:-1]):
            column.sort(key=lambda t: _mean([position[c] for c in dependents[t]], position[t]))
            place(column)
    return columns


def _mean(values: Sequence[float], default: float) -> float:
    return sum(values) / len(values) if values else default


class _Box(NamedTuple):
    x: float
    y: float
    h: float


def _stacks(column: list[str], heights: Mapping[str, float], limit: float) -> list[list[str]]:
    """Cut a layer into sub-columns no taller than ``limit``, so a wide layer wraps."""
    stacks: list[list[str]] = [[]]
    used = 0.0
    for tid in column:
        if stacks[-1] and used + _ROW_GAP + heights[tid] > limit:
            stacks.append([])
            used = 0.0
        used += (_ROW_GAP if stacks[-1] else 0.0) + heights[tid]
        stacks[-1].append(tid)
    return stacks


def _stack_height(stack: list[str], heights: Mapping[str, float]) -> float:
    return sum(heights[t] for t in stack) + _ROW_GAP * (len(stack) - 1)


def _layout(columns: list[list[str]], heights: Mapping[str, float]) -> tuple[dict[str, _Box], float, float]:
    """Boxes left to right by layer, each sub-column centred on the tallest."""
    widest = max((len(c) for c in columns), default=1)
    rows = max(12, math.ceil(math.sqrt(2 * widest)))
    limit = max([float(rows * (_NODE_H + _ROW_GAP) - _ROW_GAP), *heights.values()])
    split = [_stacks(column, heights, limit) for column in columns]
    tallest = max((_stack_height(st, heights) for stacks in split for st in stacks), default=float(_NODE_H))
    height = tallest + 2 * _PAD
    boxes: dict[str, _Box] = {}
    x = float(_PAD)
    for stacks in split:
        for stack in stacks:
            y = (height - _stack_height(stack, heights)) / 2
            for tid in stack:
                boxes[tid] = _Box(x, y, heights[tid])
                y += heights[tid] + _ROW_GAP
            x += _NODE_W + _SUBCOL_GAP
        x += _COL_GAP - _SUBCOL_GAP
    width = max(x - _COL_GAP + _PAD, _NODE_W + 2 * _PAD)
    return boxes, width, height


def _edge(page: _Page, dep: str, tid: str, a: _Box, b: _Box) -> str:
    x1, y1 = a.x + _NODE_W, a.y + a.h / 2
    x2, y2 = b.x - 3, b.y + min(b.h / 2, _NODE_H / 2)
    bend = max(24.0, (x2 - x1) / 2)
    classes = ["edge"]
    crit = page.critical
    if dep in crit and tid in crit and crit.index(tid) == crit.index(dep) + 1:
        classes.append("crit")
    if page.row(tid).result.status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED):
        classes.append("off")
    path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return f'<path class="{" ".join(classes)}" d="{path}" marker-end="url(#arrow)"/>'


def _frame(height: float) -> str:
    """A node's rounded box, its status tint and the status bar on its left edge."""
    return (
        f'<rect class="tint" width="{_NODE_W}" height="{height:.0f}" rx="9"/>'
        f'<rect class="bar" width="6" height="{height:.0f}" clip-path="url(#round-{height:.0f})"/>'
        f'<rect class="box" width="{_NODE_W}" height="{height:.0f}" rx="9"/>'
    )


def _node(page: _Page, row: _Row, at: _Box) -> str:
    status = row.result.status.value
    crit = " crit" if row.id in page.critical else ""
    detail = row.result.tool
    if row.result.duration is not None:
        detail += f" · {_fmt_duration(row.result.duration)}"
    tip = f"{row.id} ({row.result.tool}): {status}, {_fmt_duration(row.result.duration)}"
    return (
        f'<g class="node st-{status}{crit}" data-task-id="{_esc(row.id)}" '
        f'transform="translate({at.x:.1f},{at.y:.1f})"><a href="#{row.anchor}">'
        f"<title>{_esc(tip)}</title>{_frame(at.h)}"
        f'<circle cx="{_NODE_W - 14}" cy="15" r="4"/>'
        f'<text class="nid" x="18" y="20">{_esc(_fit(row.id, _ID_ROOM, 13, bold=True))}</text>'
        f'<text class="ntool" x="18" y="37">{_esc(_fit(detail, _TOOL_ROOM, 12, bold=False))}</text></a></g>'
    )


def _groups(page: _Page) -> dict[str, list[str]]:
    """for_each tasks with too many items to draw one by one: parent id → item ids."""
    items: dict[str, list[str]] = {}
    for row in page.rows:
        if row.parent is not None:
            items.setdefault(row.parent, []).append(row.id)
    return {parent: ids for parent, ids in items.items() if len(ids) > _MAX_ITEM_NODES}


def _cells_per_row() -> int:
    return int((_NODE_W - 2 * _CELL_PAD + _CELL_GAP) // (_CELL + _CELL_GAP))


def _group_height(count: int) -> float:
    rows = math.ceil(count / _cells_per_row())
    return _GROUP_HEAD + rows * (_CELL + _CELL_GAP) - _CELL_GAP + _CELL_PAD


def _group(page: _Page, parent: str, ids: list[str], at: _Box) -> str:
    """Many items as one box of cells (one per item, by status): 300 items fit on screen."""
    per_row = _cells_per_row()
    cells = []
    for i, tid in enumerate(ids):
        row = page.row(tid)
        x = _CELL_PAD + (i % per_row) * (_CELL + _CELL_GAP)
        y = _GROUP_HEAD + (i // per_row) * (_CELL + _CELL_GAP)
        tip = f"{tid}: {row.result.status.value}, {_fmt_duration(row.result.duration)}"
        cells.append(
            f'<a href="#{row.anchor}"><rect class="cell st-{row.result.status.value}" '
            f'data-task-id="{_esc(tid)}" '
            f'x="{x}" y="{y}" width="{_CELL}" height="{_CELL}" rx="2"><title>{_esc(tip)}</title></rect></a>'
        )
    failed = sum(1 for tid in ids if page.row(tid).result.status is not TaskStatus.SUCCEEDED)
    summary = f"{page.row(parent).result.tool} · {_count(len(ids), 'item')}"
    summary += f" · {failed} not ok" if failed else ""
    label = _fit(f"{ids[0]} … {ids[-1]}", _TOOL_ROOM, 13, bold=True)
    status = page.row(parent).result.status.value
    return (
        f'<g class="group st-{status}" data-group="{_esc(parent)}" '
        f'transform="translate({at.x:.1f},{at.y:.1f})"><title>{_esc(parent)}: {_esc(summary)}</title>'
        f"{_frame(at.h)}"
        f'<text class="nid" x="18" y="20">{_esc(label)}</text>'
        f'<text class="ntool" x="18" y="37">{_esc(_fit(summary, _TOOL_ROOM, 12, bold=False))}</text>{"".join(cells)}</g>'
    )


def _render_dag(page: _Page) -> str:
    groups = _groups(page)
    # A group is laid out as its first item; the other items are drawn inside its box.
    hidden = {tid for ids in groups.values() for tid in ids[1:]}
    layout_graph = TaskGraph((t for t in page.shown if t.id not in hidden), name=page.shown.name)
    heights = {tid: float(_NODE_H) for tid in layout_graph.tasks}
    heights.update({ids[0]: _group_height(len(ids)) for ids in groups.values()})
    boxes, width, height = _layout(_order_layers(layout_graph), heights)
    edges = [_edge(page, d, t.id, boxes[d], boxes[t.id]) for t in layout_graph for d in sorted(t.deps)]
    firsts = {ids[0]: parent for parent, ids in groups.items()}
    nodes = [
        _group(page, firsts[tid], groups[firsts[tid]], box)
        if tid in firsts
        else _node(page, page.row(tid), box)
        for tid, box in boxes.items()
    ]
    clips = "".join(
        f'<clipPath id="round-{h:.0f}"><rect width="{_NODE_W}" height="{h:.0f}" rx="9"/></clipPath>'
        for h in sorted({b.h for b in boxes.values()})
    )
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,1 L9,5 L0,9 z" fill="#9aa3b2"/></marker>{clips}</defs>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="task graph">'
        f"{defs}<g>{''.join(edges)}</g><g>{''.join(nodes)}</g></svg>"
    )
    critical = '<span><i style="--c:#6366f1"></i>critical path</span>' if page.critical else ""
    return _card(
        "Graph",
        f"{_count(len(page.rows), 'task')} · {_count(len(layers(page.shown)), 'layer')}",
        _legend(TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED) + critical,
        f'<div id="dag" class="dag">{svg}</div>',
    )


# -- timeline ---------------------------------------------------------------------------


def _axis(page: _Page, step: float) -> str:
    count = int(page.span / step + 1e-9)
    ticks = "".join(
        f'<span class="tick" style="left:{100 * at / page.span:.3f}%">{_fmt_tick(at, step)}</span>'
        for at in (k * step for k in range(count + 1))
    )
    return f'<div class="tl-axis"><div class="tl-label">Task</div><div class="tl-track">{ticks}</div></div>'


def _bar(page: _Page, row: _Row) -> str:
    parts: list[str] = []
    for seg in row.segments:
        left, right = page.pct(seg.start), page.pct(seg.end)
        kind = seg.kind if seg.kind in ("wait", "retry", "backoff", "crash") else ""
        status = seg.kind if not kind else "failed"
        tip = f"{row.id}: {seg.note}, {_fmt_duration(seg.end - seg.start)}"
        parts.append(
            f'<span class="seg st-{_esc(status)}{" k-" + kind if kind else ""}" '
            f'style="left:{left:.3f}%;width:{right - left:.3f}%" title="{_esc(tip)}"></span>'
        )
    result = row.result
    if not row.segments and result.ended_at is not None:
        at = page.pct(result.ended_at)
        parts.append(f'<span class="mark st-{result.status.value}" style="left:{at:.3f}%"></span>')
        parts.append(_label(at, result.status.value))
    elif row.segments:
        parts.append(_label(page.pct(row.segments[-1].end), _fmt_duration(_active_time(row))))
    return "".join(parts)


def _active_time(row: _Row) -> float | None:
    """The step's time: start to end, less any downtime of the run between its attempts."""
    if not any(seg.kind == "crash" for seg in row.segments) and not _spans_a_stop(row):
        return row.result.duration
    return sum(seg.end - seg.start for seg in row.segments if seg.kind not in ("wait", "backoff"))


def _spans_a_stop(row: _Row) -> bool:
    """Whether the row's first and last segments are in different lives of the run."""
    return bool(row.segments) and any(
        row.segments[0].start <= alive and resumed <= row.segments[-1].end for alive, resumed in row.stops
    )


def _label(at: float, text: str) -> str:
    """Text just after a bar; the track keeps a right margin so the last bar's label fits."""
    return f'<span class="dur" style="left:{at:.3f}%">{_esc(text)}</span>'


def _timeline_row(page: _Page, row: _Row) -> str:
    result = row.result
    tries = f'<span class="tries" title="attempts">×{result.attempts}</span>' if result.attempts > 1 else ""
    kind = " item" if row.parent else " fanout" if row.task is not None and row.task.for_each else ""
    return (
        f'<div class="tl-row{kind}" data-task-id="{_esc(row.id)}" data-status="{result.status.value}">'
        f'<a class="tl-label" href="#{row.anchor}" title="{_esc(row.id)} ({_esc(result.tool)})">'
        f'<span class="dot st-{result.status.value}"></span><span class="tid">{_esc(row.id)}</span>'
        f'<span class="tool">{_esc(result.tool)}</span>{tries}</a>'
        f'<div class="tl-track">{_bar(page, row)}</div></div>'
    )


def _render_timeline(page: _Page) -> str:
    step = _nice_step(page.span)
    body = "".join(_timeline_row(page, row) for row in page.rows)
    legend = _legend(TaskStatus.SUCCEEDED, TaskStatus.FAILED) + (
        '<span><i class="k-retry"></i>failed attempt</span><span><i class="k-backoff"></i>backoff</span>'
        '<span><i class="k-wait"></i>waiting for a slot</span>'
    )
    if any(seg.kind == "crash" for row in page.rows for seg in row.segments):
        legend += '<span><i class="k-crash"></i>attempt cut short by a crash (resumed later)</span>'
    dense = " dense" if len(page.rows) > _DENSE_ROWS else ""
    content = (
        f'<div id="timeline" class="timeline{dense}" style="--tick:{step / page.span * 100:.4f}%">'
        f'{_axis(page, step)}<div class="tl-body">{body}</div></div>'
    )
    return _card("Timeline", f"{_fmt_duration(page.result.duration)} wall time", legend, content)


# -- details ----------------------------------------------------------------------------


def _value_block(heading: str, value: Any, css: str = "") -> str:
    text, note = _fmt_json(value)
    note_html = f'<div class="note">{_esc(note)}</div>' if note else ""
    return f'<section class="{css}"><h3>{heading}</h3><pre>{_esc(text)}</pre>{note_html}</section>'


def _task_facts(page: _Page, row: _Row) -> str:
    result, task = row.result, row.task
    facts: list[tuple[str, str]] = []
    if row.parent is not None:
        link = f'<a href="#{page.row(row.parent).anchor}"><code>{_esc(row.parent)}</code></a>'
        facts.append(("Item of", link))
    if task is not None:
        deps = sorted(task.dependencies)
        if deps and row.parent is None:
            facts.append(("Depends on", ", ".join(f"<code>{_esc(d)}</code>" for d in deps)))
        for name in ("when", "for_each", "description"):
            value = getattr(task, name)
            if value:
                facts.append((name, f"<code>{_esc(value)}</code>"))
        if not task.is_local:
            facts.append(("target", f"<code>{_esc(json.dumps(_target(task)))}</code>"))
    if result.started_at is not None:
        facts.append(("Started", f"+{_esc(_fmt_duration(result.started_at - page.start))}"))
    if result.ended_at is not None:
        facts.append(("Ended", f"+{_esc(_fmt_duration(result.ended_at - page.start))}"))
    items = "".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return f"<section><h3>Task</h3><dl>{items}</dl></section>"


def _target(task: Task) -> Any:
    target = task.target
    return target if isinstance(target, str) else target.model_dump()


def _details(page: _Page, row: _Row, open_: bool) -> str:
    result = row.result
    status = result.status.value
    blocks = [_task_facts(page, row)]
    blocks.append(_value_block("Inputs", row.task.args if row.task is not None else {}))
    if result.error is not None:
        error = f"{result.error.type}: {result.error.message}"
        retry = "retryable" if result.error.retryable else "not retryable"
        blocks.append(_value_block(f"Error · {retry}", error, "err"))
    retries = [
        f"{s.note} ({_fmt_duration(s.end - s.start)})" for s in row.segments if s.kind in ("retry", "crash")
    ]
    if retries:
        blocks.append(_value_block("Failed attempts", "\n".join(retries), "err"))
    if result.status is TaskStatus.SUCCEEDED or result.output is not None:
        blocks.append(_value_block("Output", result.output))
    started = "—" if result.started_at is None else f"+{_fmt_duration(result.started_at - page.start)}"
    return (
        f'<details id="{row.anchor}" class="{"item" if row.parent else "task"}" '
        f'data-task-id="{_esc(row.id)}"{" open" if open_ else ""}>'
        f'<summary><span class="tid"><span class="dot st-{status}"></span><span>{_esc(row.id)}</span></span>'
        f'<span class="muted">{_esc(result.tool)}</span><span class="st st-{status}">{status}</span>'
        f'<span class="num hide-s">{result.attempts}</span><span class="num hide-s">{_esc(started)}</span>'
        f'<span class="num">{_esc(_fmt_duration(result.duration))}</span></summary>'
        f'<div class="body">{"".join(blocks)}</div></details>'
    )


def _render_details(page: _Page) -> str:
    failed = [r.id for r in page.rows if r.result.status is TaskStatus.FAILED][:MAX_OPEN_FAILED]
    head = (
        '<div class="thead"><span>Task</span><span>Tool</span><span>Status</span>'
        '<span class="num hide-s">Attempts</span><span class="num hide-s">Started</span>'
        '<span class="num">Duration</span></div>'
    )
    body = "".join(_details(page, row, row.id in failed) for row in page.rows)
    content = f'<div id="tasks" class="tasks">{head}{body}</div>'
    return _card("Tasks", "click a row for inputs, output and error", "", content)


# -- page -------------------------------------------------------------------------------


def _legend(*statuses: TaskStatus) -> str:
    return "".join(f'<span class="st-{s.value}"><i></i>{s.value}</span>' for s in statuses)


def _card(title: str, subtitle: str, legend: str, content: str) -> str:
    legend_html = f'<div class="legend">{legend}</div>' if legend else ""
    return (
        f'<section class="card"><header><h2>{_esc(title)}<small>{_esc(subtitle)}</small></h2>'
        f"{legend_html}</header>{content}</section>"
    )


def _asset(name: str) -> str:
    return resources.files("orchestrator").joinpath("report_assets", name).read_text(encoding="utf-8")


def render_html(
    graph: TaskGraph, result: RunResult, events: Sequence[Event] = (), *, title: str | None = None
) -> str:
    """The report as one HTML document (no external resources).

    ``events`` (the run's full stream) add for_each items' inputs, waiting time, failed
    attempts and backoff to what ``result`` alone can show. Every task id, output and error
    is escaped: outputs are data from tools, and may contain markup.
    """
    page = _build(graph, result, list(events))
    heading = title or graph.name or f"Run {result.run_id}"
    # "</" inside inline CSS/JS would end the element early; the assets are ours and have none.
    css, js = _asset("report.css") + "\n" + _status_css(), _asset("report.js")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="stepweave"><title>{_esc(heading)} · stepweave</title>'
        f'<style>{css}</style></head><body><div class="wrap">{_render_header(page, heading)}'
        f"<main>{_render_dag(page)}{_render_timeline(page)}{_render_details(page)}</main>"
        f'<footer class="foot">Generated by stepweave · run {_esc(result.run_id)}</footer></div>'
        f"<script>{js}</script></body></html>\n"
    )


def write_html(
    path: str | Path,
    graph: TaskGraph,
    result: RunResult,
    events: Iterable[Event] = (),
    *,
    title: str | None = None,
) -> Path:
    """Write ``render_html(...)`` to ``path`` (UTF-8), creating parent folders; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(graph, result, list(events), title=title), encoding="utf-8")
    return target
