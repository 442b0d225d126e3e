"""The joiner: after a plan has run, decide ``finish`` (with the answer) or ``replan`` (why).

Its answer is structured (``JoinDecision``, requested with the same response-format
fallback as plans), never found by looking for a word in prose. Once the replans are
used up the schema allows only ``finish``, so a model that still wants to replan is
told so and repaired instead of silently looping. A stream the server cut off is asked
again unchanged (up to the caller's retries): the transport's fault is never a repair.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pydantic import ValidationError

from orchestrator import Event, PlannerError, Task

from .chat import ChatCaller, JsonRequest
from .context import Outcome, describe_results
from .events import JoinerDecided, PlannerCallEnded, PlannerCallStarted, PlannerRetrying, PlanRejected
from .prompts import render
from .schema import JoinDecision, join_schema
from .stream import JsonScanner
from .usage import CallUsage

__all__ = ["decide"]


def _parse(text: str, *, allow_replan: bool) -> JoinDecision | str:
    """The decision in ``text``, or the problem with it."""
    scanner = JsonScanner(tasks_key=None)
    scanner.feed(text)
    problems = scanner.close()
    if problems:
        return "; ".join(problems)
    if not isinstance(scanner.document, dict):
        return "the answer must be a JSON object with thought, action, answer and reason"
    try:
        decision = JoinDecision.model_validate(scanner.document)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors(include_url=False)
        )
    if decision.action == "replan" and not allow_replan:
        return "replanning is not possible any more (max_replans reached): use action 'finish'"
    return decision


async def decide(
    caller: ChatCaller,
    *,
    request: str,
    tasks: Iterable[Task],
    outcomes: Mapping[str, Outcome],
    replans_left: int,
    max_repairs: int,
    result_limit: int,
    run_id: str,
    emit: Callable[[Event], None],
    calls: list[CallUsage],
    stream: bool = True,
) -> JoinDecision:
    """Ask the joiner about the run so far; append each call's usage to ``calls``.

    ``stream``: read the answer as a stream. The decision is parsed whole either way; a
    stream is what lets ``first_token_timeout`` and ``idle_timeout`` fail a hung server in
    seconds (an answer sent whole is bounded only by the per-request ``timeout``).
    """
    allow_replan = replans_left > 0
    messages = [
        {
            "role": "system",
            "content": render("joiner_system", allow_replan=allow_replan, replans_left=replans_left),
        },
        {
            "role": "user",
            "content": render(
                "joiner_user", request=request, results=describe_results(tasks, outcomes, limit=result_limit)
            ),
        },
    ]
    schema = join_schema(allow_replan=allow_replan)

    def retrying(exc: BaseException, delay: float) -> None:
        emit(PlannerRetrying(run_id=run_id, call="join", error=f"{type(exc).__name__}: {exc}", delay=delay))

    attempt = 0
    cut_off = 0
    while True:
        emit(PlannerCallStarted(run_id=run_id, call="join"))
        call = caller.call(
            JsonRequest("join", messages, "join_decision", schema), stream=stream, on_retry=retrying
        )
        try:
            async for _ in call:
                pass
        finally:
            if call.usage is not None:
                calls.append(call.usage)
                emit(PlannerCallEnded(run_id=run_id, usage=call.usage))
        if call.transport is not None:
            # A stream the server cut off is not the model's mistake: ask the same again,
            # and never spend a repair (or the model's attention) on it.
            if cut_off >= caller.retries:
                raise PlannerError(f"{call.transport}, {cut_off + 1} times: giving up")
            cut_off += 1
            retrying(ConnectionError(call.transport), 0.0)
            continue
        parsed = _parse(call.text, allow_replan=allow_replan)
        if isinstance(parsed, JoinDecision):
            emit(JoinerDecided(run_id=run_id, decision=parsed))
            return parsed
        left = max_repairs - attempt
        emit(PlanRejected(run_id=run_id, call="join", problems=[parsed], repairs_left=left))
        if left == 0:
            raise PlannerError(f"the joiner's answer is still invalid after {max_repairs} repairs: {parsed}")
        messages += [
            {"role": "assistant", "content": call.text or "(no answer)"},
            {"role": "user", "content": render("repair_joiner", problem=parsed)},
        ]
        attempt += 1
