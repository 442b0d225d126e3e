"""The HTML report, rendered from a real run and read back with an HTML parser and Chromium."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from orchestrator import (
    Event,
    Orchestrator,
    RunEnded,
    RunResult,
    RunStatus,
    Task,
    TaskGraph,
    TaskResult,
    TaskStatus,
)
from orchestrator.report import render_html, write_html
from tools import tool

S = TaskStatus
EVIL = "<script>alert('pwned')</script>"


# -- reading the HTML back ----------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]
    containers: frozenset[str]  # ids of the elements it sits in


class Collect(HTMLParser):
    """Every element with its attributes and the ids of its ancestors."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.text: list[str] = []
        self._stack: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)
        if tag not in _VOID:
            self._stack.append((tag, dict(attrs).get("id")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def _add(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ids = frozenset(i for _, i in self._stack if i)
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, ids))

    def task_ids(self, container: str) -> list[str]:
        return [
            e.attrs["data-task-id"]
            for e in self.elements
            if "data-task-id" in e.attrs and container in e.containers
        ]

    def find(self, container: str, task_id: str) -> Element:
        return next(
            e for e in self.elements if e.attrs.get("data-task-id") == task_id and container in e.containers
        )


def parse(document: str) -> Collect:
    parser = Collect()
    parser.feed(document)
    parser.close()
    return parser


# -- a real run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    graph: TaskGraph
    result: RunResult
    events: list[Event]


def build_graph() -> TaskGraph:
    return TaskGraph(
        [
            Task(id="users", tool="fetch", args={"what": "users", "delay": 0.03}),
            Task(id="orders", tool="fetch", args={"what": "orders", "delay": 0.06}),
            Task(id="auth", tool="flaky", backoff=0.01),
            Task(id="cache", tool="boom", args={"message": 'cache <down> & "out"'}),
            Task(id="after_cache", tool="echo", args={"value": 1}, deps=("cache",)),
            Task(id="maybe", tool="echo", args={"value": 2}, when="${{ steps.users.output.status >= 500 }}"),
            Task(
                id="each",
                tool="echo",
                for_each="${{ steps.users.output['ids'] }}",
                args={"value": "${{ item }}"},
            ),
            Task(
                id="merge", tool="echo", args={"value": "${{ steps.each.output }}"}, deps=("orders", "auth")
            ),
        ],
        name="nightly <sync>",
    )


async def execute(graph: TaskGraph) -> Run:
    attempts = 0

    @tool
    async def fetch(what: str, delay: float) -> dict[str, Any]:
        await asyncio.sleep(delay)
        return {"status": 200, "ids": [1, 2, 3], "body": EVIL, "what": what}

    @tool
    async def boom(message: str) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError(message)

    @tool(retries=3)
    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.005)
        if attempts < 3:
            raise ConnectionError(f"attempt {attempts} refused")
        return "token"

    @tool
    async def echo(value: Any) -> Any:
        await asyncio.sleep(0.005)
        return value

    orchestrator = Orchestrator(tools=[fetch, boom, flaky, echo], failure_policy="continue")
    events = [event async for event in orchestrator.run_stream(graph)]
    last = events[-1]
    assert isinstance(last, RunEnded)
    return Run(graph, last.result, events)


@pytest.fixture(scope="module")
def run() -> Run:
    # A sync fixture running its own loop, so one real run serves every test in the module.
    return asyncio.run(execute(build_graph()))


@pytest.fixture(scope="module")
def report(run: Run) -> str:
    return render_html(run.graph, run.result, run.events)


def test_the_run_exercised_every_feature_the_report_shows(run: Run) -> None:
    tasks = run.result.tasks
    assert run.result.status is RunStatus.FAILED
    assert tasks["cache"].status is S.FAILED
    assert tasks["after_cache"].status is S.CANCELLED
    assert tasks["maybe"].status is S.SKIPPED
    assert tasks["auth"].status is S.SUCCEEDED and tasks["auth"].attempts == 3
    assert [tasks[f"each[{i}]"].output for i in range(3)] == [1, 2, 3]
    assert tasks["merge"].status is S.SUCCEEDED


def test_every_task_has_a_timeline_row_a_dag_node_and_details(run: Run, report: str) -> None:
    doc = parse(report)
    every = set(run.result.tasks)
    assert {"each[0]", "each[1]", "each[2]", "each"} <= every
    for container in ("timeline", "dag", "tasks"):
        ids = doc.task_ids(container)
        assert sorted(ids) == sorted(every), container  # each exactly once
    rows = [e for e in doc.elements if "tl-row" in e.attrs.get("class", "").split()]
    assert len(rows) == len(every)
    assert doc.find("timeline", "maybe").attrs["data-status"] == "skipped"
    assert doc.find("timeline", "cache").attrs["data-status"] == "failed"
    assert "item" in doc.find("timeline", "each[1]").attrs["class"].split()


def test_timeline_shows_retries_and_backoff_from_events(report: str) -> None:
    doc = parse(report)
    in_auth_row = _row_elements(doc, "auth")
    classes = [e.attrs.get("class", "") for e in in_auth_row]
    assert sum("k-retry" in c for c in classes) == 2
    assert sum("k-backoff" in c for c in classes) == 2
    assert sum("st-succeeded" in c and "seg" in c for c in classes) == 1
    titles = " ".join(e.attrs.get("title", "") for e in in_auth_row)
    assert "ConnectionError: attempt 1 refused" in titles
    assert "×3" in report
    details = " ".join(parse(report).text)
    assert "Failed attempts" in details and "attempt 2: ConnectionError: attempt 2 refused" in details


def _row_elements(doc: Collect, task_id: str) -> list[Element]:
    """The elements of one timeline row: those after its start, up to the next row."""
    start = doc.elements.index(doc.find("timeline", task_id))
    out: list[Element] = []
    for element in doc.elements[start + 1 :]:
        if "data-task-id" in element.attrs:
            break
        out.append(element)
    return out


def test_timeline_bars_sit_on_a_time_axis(run: Run, report: str) -> None:
    doc = parse(report)
    ticks = [e for e in doc.elements if e.attrs.get("class") == "tick"]
    assert len(ticks) >= 3
    lefts = [float(e.attrs["style"].removeprefix("left:").removesuffix("%")) for e in ticks]
    assert lefts[0] == 0 and lefts == sorted(lefts) and lefts[-1] <= 100
    # Bars are as long as the steps took: compare with the recorded durations, not with the
    # requested sleeps (a loaded machine stretches the 30 ms one past the 60 ms one).
    width = {tid: _bar_width(doc, tid) for tid in ("users", "orders")}
    took = {tid: run.result.tasks[tid].duration or 0.0 for tid in ("users", "orders")}
    assert width["users"] > 0 and width["orders"] > 0
    assert width["orders"] / width["users"] == pytest.approx(took["orders"] / took["users"], rel=0.1)


def _bar_width(doc: Collect, task_id: str) -> float:
    """Width of the step's running segments (not its waiting or backoff ones), in %."""
    widths = [
        float(element.attrs["style"].split("width:")[1].rstrip("%"))
        for element in _row_elements(doc, task_id)
        if "seg" in element.attrs.get("class", "").split()
        and " k-" not in f" {element.attrs.get('class', '')}"
        and "width:" in element.attrs.get("style", "")
    ]
    assert widths, f"no bar for {task_id}"
    return sum(widths)


def test_header_names_the_run_status_counts_and_error(run: Run, report: str) -> None:
    doc = parse(report)
    text = " ".join(doc.text)
    badge = next(e for e in doc.elements if e.attrs.get("id") == "run-status")
    assert "st-failed" in badge.attrs["class"]
    assert run.result.run_id in text
    assert "nightly <sync>" in text  # the graph's name, as text (escaped in the source)
    assert "nightly &lt;sync&gt;" in report
    for count, status in ((1, "failed"), (1, "skipped"), (1, "cancelled")):
        assert f"<b>{count}</b> {status}" in report
    assert "task 'cache' failed: RuntimeError: cache <down> & \"out\"" in text


def test_user_content_is_escaped(report: str) -> None:
    assert EVIL not in report
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in report
    assert report.count("<script") == 1  # only the report's own
    assert "cache &lt;down&gt; &amp; &quot;out&quot;" in report


def test_report_is_self_contained(report: str) -> None:
    doc = parse(report)
    for element in doc.elements:
        assert "src" not in element.attrs, element
        assert element.attrs.get("href", "#").startswith("#"), element
        assert element.tag not in ("link", "iframe", "img"), element
    assert "@import" not in report and "url(http" not in report


def test_details_show_inputs_output_and_error(run: Run, report: str) -> None:
    text = " ".join(parse(report).text)
    assert '"value": "${{ steps.each.output }}"' in text  # inputs as written
    assert '"ids": [\n    1,\n    2,\n    3\n  ]' in text  # output pretty-printed
    assert "RuntimeError: cache <down>" in text
    assert "UpstreamFailed" in text  # why after_cache was cancelled
    failed = next(
        e for e in parse(report).elements if e.tag == "details" and e.attrs.get("data-task-id") == "cache"
    )
    assert "open" in failed.attrs


def test_rendering_is_deterministic_and_works_without_events(run: Run, report: str) -> None:
    assert render_html(run.graph, run.result, run.events) == report
    plain = render_html(run.graph, run.result)
    doc = parse(plain)
    assert sorted(doc.task_ids("timeline")) == sorted(run.result.tasks)
    assert sorted(doc.task_ids("dag")) == sorted(run.result.tasks)  # items from the result alone
    assert "k-retry" not in plain.split('id="timeline"')[1]


async def test_a_live_runs_graph_renders_like_the_graph_as_written() -> None:
    # The CLI passes ``run.graph``, which already holds the for_each items (with their
    # parent's deps); they must still be drawn under their parent, each once.
    @tool
    async def items() -> list[int]:
        return [1, 2]

    @tool
    async def echo(value: Any) -> Any:
        return value

    graph = TaskGraph(
        [
            Task(id="src", tool="items"),
            Task(id="each", tool="echo", for_each="${{ steps.src.output }}", args={"value": "${{ item }}"}),
        ]
    )
    async with Orchestrator(tools=[items, echo]).start(graph) as live:
        events = [event async for event in live.events()]
        result = await live.wait()
        live_graph = live.graph
    assert "each[0]" in live_graph
    from_live = render_html(live_graph, result, events)
    assert from_live == render_html(graph, result, events)
    assert sorted(parse(from_live).task_ids("dag")) == ["each", "each[0]", "each[1]", "src"]


def test_huge_outputs_are_truncated_with_a_note() -> None:
    graph = TaskGraph([Task(id="big", tool="t")])
    big = list(range(50_000))
    result = _result(graph, {"big": (0.0, 0.5)}, outputs={"big": big})
    page = render_html(graph, result)
    assert "Truncated: showing the first 10,000 of" in page
    assert len(page) < 100_000


def test_write_html_creates_folders_and_returns_the_path(run: Run, tmp_path: Path) -> None:
    path = write_html(tmp_path / "deep" / "report.html", run.graph, run.result, iter(run.events), title="T")
    assert path == tmp_path / "deep" / "report.html"
    assert "<title>T · stepweave</title>" in path.read_text(encoding="utf-8")


def test_one_task_run_renders() -> None:
    graph = TaskGraph([Task(id="only", tool="t")])
    page = render_html(graph, _result(graph, {"only": (0.0, 0.0)}))
    doc = parse(page)
    assert doc.task_ids("timeline") == ["only"] and doc.task_ids("dag") == ["only"]
    assert "Run r1" in page  # no name, no title: named after the run


def test_three_hundred_tasks_render_quickly_and_compactly() -> None:
    graph = TaskGraph(
        [
            Task(id="src", tool="t"),
            Task(id="each", tool="t", for_each="${{ steps.src.output }}"),
            *(Task(id=f"side{i}", tool="t", deps=("src",)) for i in range(8)),
        ]
    )
    times = {t.id: (0.0, 0.1) for t in graph}
    times |= {f"each[{i}]": (0.1 + i / 1000, 0.2 + i / 1000) for i in range(290)}
    result = _result(graph, times, tools={tid: "t" for tid in times})
    started = time.perf_counter()
    page = render_html(graph, result)
    assert time.perf_counter() - started < 2
    doc = parse(page)
    assert len(doc.task_ids("timeline")) == len(result.tasks) == 300
    assert sorted(doc.task_ids("dag")) == sorted(result.tasks)  # items drawn as cells of one box
    assert 'data-group="each"' in page
    svg = next(e for e in doc.elements if e.tag == "svg")
    assert int(svg.attrs["height"]) < 1000 and int(svg.attrs["width"]) < 1400


def _result(
    graph: TaskGraph,
    times: dict[str, tuple[float, float]],
    *,
    outputs: dict[str, Any] | None = None,
    tools: dict[str, str] | None = None,
) -> RunResult:
    tool_of = {t.id: t.tool for t in graph} | (tools or {})
    tasks = {
        tid: TaskResult(tid, tool_of[tid], S.SUCCEEDED, (outputs or {}).get(tid), None, 1, start, end)
        for tid, (start, end) in times.items()
    }
    end = max(e for _, e in times.values())
    return RunResult("r1", RunStatus.SUCCEEDED, tasks, started_at=0.0, ended_at=end)


# -- in a real browser -----------------------------------------------------------------


def _chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("chromium not installed: .ci/run installs it (apt package chromium)")


def _headless(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


@pytest.mark.timeout(150)
def test_chromium_renders_every_step_and_takes_a_screenshot(run: Run, tmp_path: Path) -> None:
    binary = _chromium()
    page = write_html(tmp_path / "report.html", run.graph, run.result, run.events)
    dumped = _headless(binary, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")[-2000:]
    dom = dumped.stdout.decode()
    assert 'data-report="ready"' in dom  # the inline script ran to its end
    doc = parse(dom)
    rows = [
        e for e in doc.elements if "tl-row" in e.attrs.get("class", "").split() and "timeline" in e.containers
    ]
    assert sorted(e.attrs["data-task-id"] for e in rows) == sorted(run.result.tasks)
    assert sorted(doc.task_ids("dag")) == sorted(run.result.tasks)

    png = tmp_path / "report.png"
    shot = _headless(
        binary, tmp_path / "profile2", f"--screenshot={png}", "--window-size=1400,1000", page.as_uri()
    )
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 30_000  # a blank 1400×1000 page compresses to a few KB


#: Measures, in the browser, every graph node's labels against the node's status dot and
#: its right edge, and writes how many overlap into the page (read back with --dump-dom).
_MEASURE = """<script>
window.addEventListener("load", () => {
  const bad = [];
  for (const node of document.querySelectorAll(".dag g.node")) {
    const dot = node.querySelector("circle");
    const left = dot.cx.baseVal.value - dot.r.baseVal.value;
    const width = node.querySelector("rect.box").width.baseVal.value;
    const id = node.querySelector("text.nid"), tool = node.querySelector("text.ntool");
    if (id.x.baseVal[0].value + id.getComputedTextLength() > left - 2) bad.push("id:" + id.textContent);
    if (tool.x.baseVal[0].value + tool.getComputedTextLength() > width - 6) bad.push("tool:" + tool.textContent);
  }
  document.body.setAttribute("data-overlaps", JSON.stringify(bad));
});
</script>"""


@pytest.mark.timeout(120)
def test_long_ids_never_reach_the_status_dot_in_a_browser(tmp_path: Path) -> None:
    """Ids as TSG steps name them (long, some of wide letters) are clipped to the room the
    font really takes, measured by Chromium, not to a count of characters."""
    binary = _chromium()
    ids = [
        "step-12-restart-the-ingress-controller-pods",
        "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWW",
        "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmm",
        "CHECK_THE_SERVICE_ENDPOINTS_AND_DNS",
        "_0000000000000000000000000000000",
        "short",
    ]
    graph = TaskGraph([Task(id=tid, tool="a_tool_with_a_rather_long_name_too") for tid in ids])
    result = _result(graph, {tid: (0.0, 1234.5) for tid in ids})
    page = tmp_path / "report.html"
    page.write_text(render_html(graph, result).replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    dumped = _headless(binary, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")[-2000:]
    body = next(e for e in parse(dumped.stdout.decode()).elements if e.tag == "body")
    assert body.attrs.get("data-overlaps") == "[]", body.attrs.get("data-overlaps")
