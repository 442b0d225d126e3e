"""One plan from the model, repaired until valid: each task is yielded the moment it is.

The response is parsed while it streams; every complete, valid task whose inputs are
known is yielded at once (the scheduler starts it while the model is still writing).
When the answer ends with problems (truncated JSON, unknown tool, bad arguments, a
dangling reference, a cycle, no tasks at all) the problems go back to the model, up to
``max_repairs`` times. Tasks already yielded have started: the repair prompt says so and
the assembler drops a repeat of one, so nothing runs twice.

A plan is untrusted input of unbounded size, so each answer is capped in bytes and in
tasks: crossing a cap ends planning at once with a ``PlannerError`` naming the limit
(no repair: a model that wrote too much is not asked to write more).

A stream the server cut off (no ``finish_reason``, a dropped connection) is the
transport's fault, not the model's: the same request is sent again (up to the caller's
``retries``), and the model never hears of it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable

from orchestrator import Event, PlannerError, Task

from .assemble import PlanAssembler
from .chat import ChatCaller, JsonRequest
from .events import PlannerCallEnded, PlannerCallStarted, PlannerRetrying, PlanRejected
from .prompts import render
from .stream import JsonScanner
from .usage import CallKind, CallUsage

__all__ = ["PlanCall"]

EMPTY_PLAN = (
    "the plan has no tasks; plan at least one tool call (the joiner writes the answer from the results)"
)


class PlanCall:
    """Iterate ``tasks()`` for the plan's tasks; then read ``started``, ``repairs`` and ``calls``."""

    def __init__(
        self,
        caller: ChatCaller,
        request: JsonRequest,
        assembler: PlanAssembler,
        *,
        run_id: str,
        emit: Callable[[Event], None],
        max_repairs: int,
        stream: bool,
        max_bytes: int,
        max_tasks: int,
        allow_empty: bool = False,
    ) -> None:
        self._caller = caller
        self._request = request
        self._assembler = assembler
        self._run_id = run_id
        self._emit = emit
        self._max_repairs = max_repairs
        self._stream = stream
        self._allow_empty = allow_empty
        self._max_bytes = max_bytes
        self._max_tasks = max_tasks
        self.started: list[Task] = []
        self.repairs = 0
        self.calls: list[CallUsage] = []

    async def tasks(self) -> AsyncIterator[Task]:
        request = self._request
        messages: list[dict[str, str]] = list(request.messages)
        attempt = 0
        cut_off = 0
        while True:
            kind: CallKind = request.kind if attempt == 0 else "repair"
            self.repairs = attempt
            scanner = JsonScanner()
            self._assembler.begin_attempt()
            self._emit(PlannerCallStarted(run_id=self._run_id, call=kind))
            call = self._caller.call(
                JsonRequest(kind, messages, request.schema_name, request.schema),
                stream=self._stream,
                on_retry=functools.partial(self._retrying, kind),
            )
            size = 0
            try:
                # aclosing: leaving early (a limit) closes the HTTP stream now.
                async with contextlib.aclosing(aiter(call)) as deltas:
                    async for delta in deltas:
                        size += len(delta.encode())
                        if size > self._max_bytes:
                            raise PlannerError(
                                self._too_big(f"more than {self._max_bytes} bytes", "max_plan_bytes")
                            )
                        for scanned in scanner.feed(delta):
                            if scanned.index >= self._max_tasks:
                                raise PlannerError(
                                    self._too_big(f"more than {self._max_tasks} tasks", "max_plan_tasks")
                                )
                            for task in self._assembler.add(scanned):
                                self.started.append(task)
                                yield task
            finally:
                if call.usage is not None:
                    self.calls.append(call.usage)
                    self._emit(PlannerCallEnded(run_id=self._run_id, usage=call.usage))
            if call.transport is not None:
                if cut_off >= self._caller.retries:
                    raise PlannerError(f"{call.transport}, {cut_off + 1} times: giving up")
                cut_off += 1
                self._retrying(kind, ConnectionError(call.transport), 0.0)
                continue  # the same request again: the model did nothing wrong
            problems = self._problems(scanner, call.finish_reason, call.max_tokens)
            if not problems:
                return
            left = self._max_repairs - attempt
            self._emit(PlanRejected(run_id=self._run_id, call=kind, problems=problems, repairs_left=left))
            if left == 0:
                raise PlannerError(self._give_up(problems))
            messages += [
                {"role": "assistant", "content": call.text or "(no answer)"},
                {
                    "role": "user",
                    "content": render("repair", problems=problems, started=[t.id for t in self.started]),
                },
            ]
            attempt += 1

    def _problems(self, scanner: JsonScanner, finish_reason: str | None, max_tokens: int | None) -> list[str]:
        problems = scanner.close()
        if problems and finish_reason == "length":
            limit = f" ({max_tokens} tokens)" if max_tokens else ""
            problems.insert(
                0,
                f"the answer hit the length limit{limit} before it was complete: write fewer, shorter tasks",
            )
        problems += self._assembler.finish()
        if not problems and not self.started and not self._allow_empty:
            problems.append(EMPTY_PLAN)
        return problems

    def _too_big(self, size: str, limit: str) -> str:
        what = "plan" if self._request.kind == "plan" else self._request.kind
        return f"the model's {what} has {size}, over the planner's limit ({limit})"

    def _give_up(self, problems: list[str]) -> str:
        what = "plan" if self._request.kind == "plan" else self._request.kind
        tries = f"after {self._max_repairs} repair{'s' if self._max_repairs != 1 else ''}"
        return f"the model's {what} is still invalid {tries}: " + "; ".join(problems)

    def _retrying(self, kind: CallKind, exc: BaseException, delay: float) -> None:
        error = f"{type(exc).__name__}: {exc}"
        self._emit(PlannerRetrying(run_id=self._run_id, call=kind, error=error, delay=delay))
