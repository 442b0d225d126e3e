"""Deciding conditions: the measurable test first, then the LLM judge, the operator, --yes, or an error."""

from __future__ import annotations

import pytest

from planners.llm.testing import OpenAITestServer, ScriptedReply
from planners.tsg import ConditionJudge, LLMJudge
from planners.tsg.judge import evaluate_test
from tools import ToolError

SQL_ROWS = {"columns": ["error_rate_pct"], "rows": [{"error_rate_pct": 12.5}], "rowcount": 1}


def test_threshold_tests_read_sql_rows_and_single_numbers() -> None:
    above = {"kind": "threshold", "op": ">", "value": 8.0, "unit": "%"}
    assert evaluate_test(above, SQL_ROWS) == (True, "measured 12.5% > 8% is True")
    assert evaluate_test(above, {"stdout": "7.9\n", "stderr": ""}) == (False, "measured 7.9% > 8% is False")
    # Several numbers: the output does not say which one is meant, so the test cannot decide.
    assert evaluate_test(above, {"stdout": "0.87 0.53 0.36 3/100", "stderr": ""}) is None
    state = {"kind": "contains", "op": "not in", "value": "HEALTH_OK"}
    assert evaluate_test(state, {"stdout": "health: HEALTH_WARN", "stderr": ""})[0] is True  # type: ignore[index]


async def test_a_measurable_condition_needs_nobody() -> None:
    async def never(question: str) -> bool | None:
        raise AssertionError("the operator must not be asked")

    judge = ConditionJudge(ask=never)
    verdict = await judge.decide(
        "error rate above 8%", SQL_ROWS, {"kind": "threshold", "op": ">", "value": 8}
    )
    assert (verdict.holds, verdict.by) == (True, "test")


async def test_prose_goes_to_the_operator_and_is_otherwise_undecided() -> None:
    questions: list[str] = []

    async def operator(question: str) -> bool | None:
        questions.append(question)
        return False

    verdict = await ConditionJudge(ask=operator).decide(
        "pods look unhealthy", {"stdout": "web-0 CrashLoop"}, None, 12
    )
    assert (verdict.holds, verdict.by) == (False, "operator")
    assert "web-0 CrashLoop" in questions[0] and "[guide line 12]" in questions[0]

    async def nobody(question: str) -> bool | None:
        return None

    # No terminal, no test, no LLM: undecided, which never holds. --yes approves commands;
    # it has no say here (the judge does not even take it).
    undecided = await ConditionJudge(ask=nobody).decide("pods look unhealthy", guide_line=7)
    assert (undecided.holds, undecided.by) == (False, "undecided")
    assert "skipped" in undecided.reason
    with pytest.raises(TypeError):
        ConditionJudge(ask=nobody, assume_yes=True)  # type: ignore[call-arg]


async def test_the_llm_judge_decides_prose_over_real_http() -> None:
    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.json({"holds": True, "reason": "web-0 restarts in a loop"}))
        llm = LLMJudge(model=server.model, base_url=server.base_url, api_key="sk-test")
        verdict = await ConditionJudge(llm=llm).decide(
            "pods look unhealthy", {"stdout": "web-0 CrashLoopBackOff"}
        )
        assert (verdict.holds, verdict.by, verdict.reason) == (True, "llm", "web-0 restarts in a loop")
        request = server.completions[0]
        assert "pods look unhealthy" in request.text and "CrashLoopBackOff" in request.text
        server.queue(ScriptedReply.json({"verdict": "maybe"}))
        with pytest.raises(ToolError, match="without a verdict"):
            await ConditionJudge(llm=llm).decide("pods look unhealthy")
