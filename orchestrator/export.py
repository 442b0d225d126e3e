"""Graph export as text: Mermaid, Graphviz DOT and JSON. Pure functions, no I/O.

People paste these into Markdown (GitHub renders Mermaid), feed them to ``dot -Tsvg``, or
load the JSON into their own tools. With a ``RunResult`` the nodes are styled by status,
and the items a ``for_each`` expanded into at run time are drawn hanging off their parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .graph import Task, TaskGraph, TaskStatus
from .result import RunResult

__all__ = [
    "STATUS_COLORS",
    "StatusColors",
    "display_graph",
    "item_parent",
    "to_dot",
    "to_json",
    "to_mermaid",
]


class StatusColors(NamedTuple):
    """One status's palette: a light ``fill``, a saturated ``stroke`` and a dark ``text``."""

    fill: str
    stroke: str
    text: str


#: The palette shared by every export and the HTML report, so a status looks the same everywhere.
STATUS_COLORS: Mapping[TaskStatus, StatusColors] = {
    TaskStatus.PENDING: StatusColors("#f8fafc", "#94a3b8", "#475569"),
    TaskStatus.READY: StatusColors("#ecfeff", "#0891b2", "#164e63"),
    TaskStatus.RUNNING: StatusColors("#fffbeb", "#d97706", "#78350f"),
    TaskStatus.SUCCEEDED: StatusColors("#ecfdf3", "#16a34a", "#14532d"),
    TaskStatus.FAILED: StatusColors("#fef2f2", "#dc2626", "#7f1d1d"),
    TaskStatus.SKIPPED: StatusColors("#f1f5f9", "#94a3b8", "#475569"),
    TaskStatus.CANCELLED: StatusColors("#faf5ff", "#9333ea", "#581c87"),
}

_ITEM_ID = re.compile(r"^(?P<parent>.+)\[(?P<index>[0-9]+)\]$")


def item_parent(task_id: str, graph: TaskGraph) -> str | None:
    """The ``for_each`` task that ``task_id`` (``each[3]``) is an item of, if it is one."""
    match = _ITEM_ID.match(task_id)
    if match is None:
        return None
    parent = match.group("parent")
    return parent if parent in graph and graph[parent].for_each is not None else None


def display_graph(graph: TaskGraph, result: RunResult | None = None, extra: Iterable[Task] = ()) -> TaskGraph:
    """The graph as drawn: structure only, with run-time tasks added.

    Items of a ``for_each`` (from ``extra``, the result, or already in ``graph`` when it is
    a live run's graph) depend only on their parent, so a fan-out reads as one. Tasks are
    reduced to id, tool and dependencies because a picture needs nothing else, and
    dependencies on tasks that are not drawn are dropped.
    """
    known: dict[str, Task] = {task.id: task for task in graph}
    for task in extra:
        known.setdefault(task.id, task)
    if result is not None:
        for tid, task_result in result.tasks.items():
            if tid not in known:
                known[tid] = Task(id=tid, tool=task_result.tool)
    skeletons: list[Task] = []
    for tid, task in known.items():
        parent = item_parent(tid, graph)
        deps = (parent,) if parent is not None else tuple(sorted(d for d in task.dependencies if d in known))
        skeletons.append(Task(id=tid, tool=task.tool, deps=deps))
    return TaskGraph(skeletons, name=graph.name)


def _statuses(graph: TaskGraph, result: RunResult | None) -> dict[str, TaskStatus]:
    if result is None:
        return {}
    pending = TaskStatus.PENDING
    return {tid: result.tasks[tid].status if tid in result.tasks else pending for tid in graph.tasks}


# -- Mermaid ----------------------------------------------------------------------------


def _mermaid_ids(graph: TaskGraph) -> dict[str, str]:
    """Task id → a Mermaid-safe node id, unique, never a keyword such as ``end``.

    The ``n_`` prefix also keeps ids from starting with ``o``/``x``, which Mermaid would
    read as circle/cross edge ends.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for tid in graph.tasks:
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", tid)
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        out[tid] = candidate
    return out


def _mermaid_text(text: str) -> str:
    """Escape text for a quoted Mermaid label with its ``#code;`` entities (``#`` first)."""
    for char, code in (("#", "#35;"), ("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text.replace("\n", " ")


def to_mermaid(graph: TaskGraph, result: RunResult | None = None) -> str:
    """A Mermaid ``flowchart TD``: one node per task labelled ``id<br/>tool``, styled by status."""
    shown = display_graph(graph, result)
    ids = _mermaid_ids(shown)
    lines = ["flowchart TD"]
    for task in shown:
        lines.append(f'    {ids[task.id]}["{_mermaid_text(task.id)}<br/>{_mermaid_text(task.tool)}"]')
    for task in shown:
        for dep in sorted(task.deps):
            lines.append(f"    {ids[dep]} --> {ids[task.id]}")
    statuses = _statuses(shown, result)
    for status in TaskStatus:
        members = [ids[tid] for tid, s in statuses.items() if s is status]
        if not members:
            continue
        c = STATUS_COLORS[status]
        dash = ",stroke-dasharray:4 3" if status in (TaskStatus.SKIPPED, TaskStatus.CANCELLED) else ""
        lines.append(f"    classDef {status.value} fill:{c.fill},stroke:{c.stroke},color:{c.text}{dash}")
        lines.append(f"    class {','.join(members)} {status.value}")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT -----------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string; newlines become ``\\n`` (a centred line break in labels)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(graph: TaskGraph, result: RunResult | None = None) -> str:
    """A Graphviz ``digraph`` (top to bottom), every id and label quoted, filled by status."""
    shown = display_graph(graph, result)
    statuses = _statuses(shown, result)
    lines = [
        f"digraph {_dot_quote(graph.name or 'stepweave')} {{",
        '    graph [rankdir=TB, fontname="Helvetica", nodesep=0.3, ranksep=0.45];',
        '    node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11,'
        ' fillcolor="#ffffff", color="#94a3b8"];',
        '    edge [color="#94a3b8", arrowsize=0.7];',
    ]
    for task in shown:
        attrs = [f"label={_dot_quote(task.id + chr(10) + task.tool)}"]
        status = statuses.get(task.id)
        if status is not None:
            colors = STATUS_COLORS[status]
            attrs += [
                f"fillcolor={_dot_quote(colors.fill)}",
                f"color={_dot_quote(colors.stroke)}",
                f"fontcolor={_dot_quote(colors.text)}",
                f"tooltip={_dot_quote(status.value)}",
            ]
        lines.append(f"    {_dot_quote(task.id)} [{', '.join(attrs)}];")
    for task in shown:
        for dep in sorted(task.deps):
            lines.append(f"    {_dot_quote(dep)} -> {_dot_quote(task.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- JSON -------------------------------------------------------------------------------


def to_json(graph: TaskGraph) -> dict[str, Any]:
    """Nodes and edges, JSON-ready.

    ``deps`` lists every dependency, explicit or implied by an expression, because that is
    what the edges mean; ``explicit_deps`` keeps what was written.
    """
    nodes = [
        {
            "id": task.id,
            "tool": task.tool,
            "deps": sorted(task.dependencies),
            "explicit_deps": list(task.deps),
            "when": task.when,
            "for_each": task.for_each,
        }
        for task in graph
    ]
    edges = [{"from": dep, "to": task.id} for task in graph for dep in sorted(task.dependencies)]
    return {"name": graph.name, "nodes": nodes, "edges": edges}
