"""Planners: everything that produces task graphs (YAML workflows; LLM planner and TSG compiler to come)."""

from .workflow import (
    Problem,
    Workflow,
    WorkflowFileError,
    load_workflow,
    parse_workflow,
    workflow_json_schema,
)

__all__ = [
    "Problem",
    "Workflow",
    "WorkflowFileError",
    "load_workflow",
    "parse_workflow",
    "workflow_json_schema",
]
