"""``planners.tsg`` exports exactly its public API."""

from __future__ import annotations

import planners.tsg

PUBLIC = {
    "CompiledGuide", "CompiledStep", "ConditionJudge", "Finding", "Guide", "GuideError", "GuideStep",
    "Judgement", "LLMJudge", "OperatorAsk", "assist_guide", "compile_guide", "lint_guide", "load_guide", "parse_guide",
    "tsg_tools",
}  # fmt: skip


def test_exports_are_exactly_the_public_api() -> None:
    assert set(planners.tsg.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(planners.tsg, name) is not None


def test_guide_errors_are_definition_errors() -> None:
    from orchestrator import WorkflowError

    assert issubclass(planners.tsg.GuideError, WorkflowError)
