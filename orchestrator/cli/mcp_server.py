"""What ``stepweave mcp serve`` serves: workflow files as MCP tools, and ``ask`` when allowed.

A workflow becomes a tool named after the workflow (sanitised to the characters MCP
allows, and made unique), described by its ``description``, with its ``inputs`` as the
input schema and its ``outputs`` as the output schema. Calling the tool runs the workflow
the way ``stepweave run`` does (same registry, same approval rules, journaled), reports a
progress notification per finished step when the client asked for progress, and returns
the outputs as structured content; a failed run is an error result naming the step.

There is no terminal on the other side of MCP: a step that needs approval runs only when
the server was started with ``--yes`` or ``--allow TOOL`` (:class:`UnattendedApproval`);
otherwise it is refused, and the result says which step and how to allow it.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mcp_types as types

from planners import Workflow, WorkflowFileError, load_workflow

from ..console import json_default
from ..errors import PlannerError
from ..events import TaskEnded
from ..graph import Task, TaskStatus
from ..result import RunResult
from ..terminal_text import escape_control
from .approval import Approval, ApprovalPolicy

if TYPE_CHECKING:
    from tools import ToolRegistry

    from ..run import Orchestrator, Run

__all__ = [
    "ASK_TOOL",
    "Progress",
    "ServedWorkflow",
    "UnattendedApproval",
    "ask_tool",
    "error_result",
    "load_workflows",
    "run_workflow",
    "tool_name",
]

#: The name of the natural-language tool (``--allow-ask``); a workflow may not take it.
ASK_TOOL = "ask"

#: What MCP allows in a tool name (SEP-986): 1-128 of letters, digits, ``_``, ``-`` and ``.``.
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_NAME = 128

#: Reports a finished step: ``(steps finished, steps known so far, message)``.
Progress = Callable[[float, float | None, str], Awaitable[None]]


def tool_name(workflow_name: str) -> str:
    """The workflow's name as an MCP tool name: other characters become ``_``, cut to 128."""
    name = _NOT_ALLOWED.sub("_", workflow_name.strip()).strip("_") or "workflow"
    return name[:_MAX_NAME]


@dataclass(frozen=True)
class ServedWorkflow:
    """One workflow file served as a tool."""

    name: str
    path: Path
    workflow: Workflow

    def tool(self) -> types.Tool:
        workflow = self.workflow
        description = workflow.description.strip() or f"Run the stepweave workflow {workflow.name!r}."
        return types.Tool(
            name=self.name,
            title=workflow.name if workflow.name != self.name else None,
            description=description,
            input_schema=input_schema(workflow),
            output_schema=output_schema(workflow),
        )


def input_schema(workflow: Workflow) -> dict[str, Any]:
    """The JSON Schema of the tool's arguments: one property per declared input."""
    properties: dict[str, Any] = {}
    for name, spec in workflow.inputs.items():
        prop: dict[str, Any] = {"type": spec.type}
        if spec.description:
            prop["description"] = spec.description
        if not spec.required:
            prop["default"] = spec.default
        properties[name] = prop
    required = [name for name, spec in workflow.inputs.items() if spec.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def output_schema(workflow: Workflow) -> dict[str, Any] | None:
    """The JSON Schema of the structured result when the workflow declares ``outputs``.

    Outputs are expressions whose type is known only after the run, so each property
    accepts any JSON value; the names, and that every one is present, are the contract.
    """
    if not workflow.outputs:
        return None
    names = list(workflow.outputs)
    return {"type": "object", "properties": {name: {} for name in names}, "required": names}


def _say(message: str) -> None:
    """One line on stderr, shown literally (it quotes file contents)."""
    from .common import err

    err.print(escape_control(message), highlight=False, markup=False, soft_wrap=True)


def load_workflows(
    folder: Path, registry: ToolRegistry, *, reserved: Sequence[str] = ()
) -> list[ServedWorkflow]:
    """Every valid workflow file in ``folder`` (``*.yaml``, ``*.yml``, recursively, in path
    order) as a tool. A file that does not load or check is reported on stderr with its
    problems (file and line) and skipped; a name already taken gets ``_2``, ``_3``… and
    that is reported too."""
    files = sorted({*folder.rglob("*.yaml"), *folder.rglob("*.yml")})
    served: list[ServedWorkflow] = []
    taken: dict[str, Path | None] = dict.fromkeys(reserved)
    for path in files:
        try:
            workflow = load_workflow(path)
            problems = workflow.problems(registry)
            if problems:
                raise WorkflowFileError(problems)
        except WorkflowFileError as exc:
            _say(f"{path}: skipped, not a valid workflow ({len(exc.problems)} problem(s)):")
            for problem in exc.problems:
                _say(f"  {problem}")
            continue
        base = name = tool_name(workflow.name)
        count = 1
        while name in taken:
            count += 1
            suffix = f"_{count}"
            name = f"{base[: _MAX_NAME - len(suffix)]}{suffix}"
        if name != base:
            other = taken[base]
            what = f"the workflow in {other}" if other is not None else "a built-in tool of this server"
            _say(f"{path}: tool name {base!r} is taken by {what}: served as {name!r}")
        taken[name] = path
        served.append(ServedWorkflow(name, path, workflow))
    return served


# -- approval without a terminal ---------------------------------------------------------------

#: The approval of the call being served: each call's run inherits its own (a context variable
#: is copied into the tasks the run starts), so refusals are reported to the right caller.
_call_approval: contextvars.ContextVar[Approval | None] = contextvars.ContextVar("mcp_approval", default=None)


@dataclass(frozen=True)
class UnattendedApproval:
    """The approver of runs started over MCP: the CLI's :class:`Approval` and policy
    (``--yes``, ``--allow TOOL``, read-only calls in ``ask``, ``--allow-env``), one per call.

    Nobody can be asked: the server's stdin is never a terminal (the stdio transport
    diverts it, ``--transport http`` detaches it), so what the policy does not approve is
    refused, with the reason kept in the call's ``Approval.refused``.
    """

    policy: ApprovalPolicy

    def begin_call(self) -> Approval:
        """A fresh approval for the call being served (and the run it starts)."""
        from .common import err

        approval = Approval(self.policy, err)
        _call_approval.set(approval)
        return approval

    async def __call__(self, task: Task, args: Mapping[str, Any]) -> bool:
        approval = _call_approval.get()
        if approval is None:  # a run not started by a call (none today): still no prompt
            approval = self.begin_call()
        return await approval(task, args)


# -- results -----------------------------------------------------------------------------------


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def _ok_result(structured: dict[str, Any] | None, shown: dict[str, Any]) -> types.CallToolResult:
    """A result whose text is ``shown`` as JSON (for clients that read only text) and whose
    structured content, when the tool has an output schema, is ``structured``."""
    text = json.dumps(shown, default=json_default, ensure_ascii=False)
    plain = None if structured is None else json.loads(json.dumps(structured, default=json_default))
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=plain)


def _failure(result: RunResult, where: Callable[[str], str]) -> str:
    """``flow.yaml:12: step 'x' failed: Type: message`` for the first failed step."""
    for task in result.tasks.values():
        if task.status is TaskStatus.FAILED and task.error is not None:
            return f"{where(task.id)}step {task.id!r} failed: {task.error.type}: {task.error.message}"
    return f"{where('')}run {result.status.value}: {result.error or 'unknown reason'}"


async def _follow(handle: Run, progress: Progress) -> RunResult:
    """Run to the end, reporting each finished step."""
    async with handle:
        finished = 0
        async for event in handle.events():
            if isinstance(event, TaskEnded):
                finished += 1
                total = len(handle.graph.tasks)
                await progress(finished, max(total, finished), f"step {event.task_id} {event.status.value}")
        return await handle.wait()


async def _to_the_end(handle: Run, progress: Progress) -> RunResult:
    """The run's result; when the call is cancelled, the run is cancelled and has ended
    before the cancellation goes on.

    The SDK cancels a call with an anyio cancel scope, which cancels every await inside it
    again: the run's own teardown (cancelling its steps, committing the journal) would be
    cut short. So the run is an asyncio task of its own, cancelled on purpose and awaited
    in a shielded scope until it has ended and its end is journaled.
    """
    import anyio

    # The task copies this context: the call's approval goes with it.
    task = asyncio.create_task(_follow(handle, progress), name=f"stepweave-mcp-{handle.run_id}")
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task])
        raise


async def run_workflow(
    served: ServedWorkflow,
    arguments: Mapping[str, Any],
    orchestrator: Orchestrator,
    approval: UnattendedApproval,
    progress: Progress,
    metadata: Mapping[str, Any],
) -> types.CallToolResult:
    """Run one workflow for a ``tools/call`` and turn the run into the call's result."""
    workflow = served.workflow
    try:
        inputs = workflow.resolve_inputs(dict(arguments))
    except WorkflowFileError as exc:
        return error_result("invalid arguments: " + "; ".join(p.message for p in exc.problems))
    refusals = approval.begin_call().refused
    handle = orchestrator.start(workflow.to_graph(), inputs=inputs, metadata=metadata)
    run = f"run {handle.run_id}"
    try:
        result = await _to_the_end(handle, progress)
    except asyncio.CancelledError:
        _say(f"{served.name}: {run} cancelled by the client")  # and journaled so by now
        raise
    _say(f"{served.name}: {run} {result.status.value} in {result.duration:.2f}s")

    def where(task_id: str) -> str:
        line = workflow.line_of(task_id) if task_id else None
        return f"{served.path}:{line}: " if line else f"{served.path}: "

    if not result.ok:
        refused = f" ({'; '.join(refusals)})" if refusals else ""
        return error_result(f"{_failure(result, where)}{refused} [{run}]")
    try:
        outputs = workflow.evaluate_outputs(result, inputs)
    except WorkflowFileError as exc:
        first = exc.problems[0] if exc.problems else exc
        return error_result(f"the steps succeeded but an output cannot be computed: {first} [{run}]")
    summary = {"outputs": outputs, "run_id": handle.run_id, "status": result.status.value}
    return _ok_result(outputs if workflow.outputs else None, summary)


# -- ask ---------------------------------------------------------------------------------------


def ask_tool() -> types.Tool:
    return types.Tool(
        name=ASK_TOOL,
        title="Ask stepweave",
        description=(
            "Plan a request in plain words with an LLM, run the plan's steps in parallel and "
            "answer. Steps that may change something run only if this server approves them "
            "(it was started with --yes or --allow TOOL); otherwise they are refused."
        ),
        input_schema={
            "type": "object",
            "properties": {"request": {"type": "string", "description": "What to do, in plain words."}},
            "required": ["request"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "answer": {"type": "string"},
                "status": {"type": "string", "description": "How the run of the plan ended."},
                "steps": {"type": "object", "description": "Each planned step's status."},
            },
            "required": ["answer", "status", "steps"],
        },
    )


AskRunner = Callable[[str, Approval, Callable[[Any], None]], Awaitable[Any]]


async def run_ask(
    request: str, ask: AskRunner, policy: ApprovalPolicy, progress: Progress
) -> types.CallToolResult:
    """Plan and run ``request`` (``ask`` is the CLI's planner call) and answer the call."""
    approver = UnattendedApproval(policy).begin_call()
    ended: asyncio.Queue[TaskEnded | None] = asyncio.Queue()

    async def report() -> None:
        finished = 0
        while (event := await ended.get()) is not None:
            finished += 1  # the plan grows as it streams: no total
            await progress(finished, None, f"step {event.task_id} {event.status.value}")

    def on_event(event: Any) -> None:
        if isinstance(event, TaskEnded):
            ended.put_nowait(event)

    async with asyncio.TaskGroup() as group:
        group.create_task(report(), name="stepweave-mcp-progress")
        try:
            result = await ask(request, approver, on_event)
        except PlannerError as exc:
            return error_result(f"planning failed: {exc}")
        finally:
            ended.put_nowait(None)
    run_result: RunResult = result.run_result
    if approver.refused:
        return error_result(
            f"{len(approver.refused)} step(s) were not approved, so the request was not carried out "
            f"in full: {'; '.join(approver.refused)}"
        )
    if not run_result.ok:
        return error_result(_failure(run_result, lambda _: ""))
    steps = {tid: task.status.value for tid, task in run_result.tasks.items()}
    answer = {"answer": result.answer, "status": run_result.status.value, "steps": steps}
    return _ok_result(answer, answer)
