"""Planners: everything that produces task graphs.

- ``planners.workflow``: YAML workflow files (``load_workflow``).
- ``planners.llm``: the LLM planner (``LLMPlanner``), imported on first use: it pulls in
  the ``openai`` client, which costs a third of a second that YAML users need not pay.
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

__all__ = [
    "AskResult",
    "CallUsage",
    "LLMConfigError",
    "LLMPlanner",
    "Pricing",
    "Problem",
    "Usage",
    "Workflow",
    "WorkflowFileError",
    "check_configuration",
    "load_workflow",
    "parse_workflow",
    "workflow_json_schema",
]

_LAZY = {"AskResult", "CallUsage", "LLMConfigError", "LLMPlanner", "Pricing", "Usage", "check_configuration"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(".llm", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
