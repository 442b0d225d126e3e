"""Planners: everything that produces task graphs.

- ``planners.workflow``: YAML workflow files (``load_workflow``).
- ``planners.llm``: the LLM planner (``LLMPlanner``).
- ``planners.tsg``: Markdown troubleshooting guides compiled into workflows.

The LLM and TSG names are imported on first use: the ``openai`` client alone costs a
third of a second that a YAML user need not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .workflow import (
    Problem,
    Workflow,
    WorkflowFileError,
    load_workflow,
    parse_workflow,
    workflow_json_schema,
)

if TYPE_CHECKING:
    from .llm import AskResult, CallUsage, LLMConfigError, LLMPlanner, Pricing, Usage, check_configuration
    from .tsg import (
        CompiledGuide,
        Finding,
        Guide,
        GuideError,
        compile_guide,
        lint_guide,
        load_guide,
        parse_guide,
    )

__all__ = [
    "AskResult",
    "CallUsage",
    "CompiledGuide",
    "Finding",
    "Guide",
    "GuideError",
    "LLMConfigError",
    "LLMPlanner",
    "Pricing",
    "Problem",
    "Usage",
    "Workflow",
    "WorkflowFileError",
    "check_configuration",
    "compile_guide",
    "lint_guide",
    "load_guide",
    "load_workflow",
    "parse_guide",
    "parse_workflow",
    "workflow_json_schema",
]

_LAZY = {
    **dict.fromkeys(
        ("AskResult", "CallUsage", "LLMConfigError", "LLMPlanner", "Pricing", "Usage", "check_configuration"),
        ".llm",
    ),
    **dict.fromkeys(
        (
            "CompiledGuide",
            "Finding",
            "Guide",
            "GuideError",
            "compile_guide",
            "lint_guide",
            "load_guide",
            "parse_guide",
        ),
        ".tsg",
    ),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
