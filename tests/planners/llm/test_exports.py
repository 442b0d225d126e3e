"""``planners.llm`` exports exactly its public API."""

from __future__ import annotations

import planners.llm

EXPECTED = {
    "AskEnded", "AskResult", "CallKind", "CallUsage", "EventHandler", "FormatMode", "JoinDecision",
    "JoinerDecided", "JsonScanner", "LLMConfig", "LLMConfigError", "LLMPlanner", "Placement", "PlanRecord",
    "PlanRejected", "PlanTask", "PlannerCallEnded", "PlannerCallStarted", "PlannerRetrying", "Pricing",
    "ResponseFormatChoice", "ScannedTask", "ServerMemory", "Usage", "check_configuration", "join_schema",
    "plan_schema",
}  # fmt: skip


def test_exports_are_exactly_the_public_api() -> None:
    assert set(planners.llm.__all__) == EXPECTED
    assert sorted(planners.llm.__all__) == list(planners.llm.__all__), "keep __all__ sorted"
    for name in planners.llm.__all__:
        assert getattr(planners.llm, name) is not None
