"""What each package exports is exactly what is meant to be public (as httpx guards it)."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "tools": {
        "Decision", "ProgressReporter", "Prompter", "ReadOnly", "SyncRunner", "Tool", "ToolArgumentError", "ToolContext",
        "ToolDefinitionError", "ToolError", "ToolNotFoundError", "ToolRegistry", "ToolResultError",
        "load_tools", "tool",
    },
    "tools.mcp": {
        "McpError", "McpServer", "McpServerGone", "McpServers", "McpTool", "McpUnavailableError", "mcp_tools",
    },
    "orchestrator": {
        "Approver", "DeviceError", "DeviceTarget", "ErrorKind", "Event", "Executor", "ExpressionError",
        "FailurePolicy", "GraphEdit", "GraphEditError", "GraphEdited", "GraphSource",
        "GraphValidationError", "InflightPolicy", "Journal", "JournalCorrupt", "JournalError",
        "JournalVersionError", "LabelsTarget", "LocalExecutor", "Orchestrator", "PlannerError",
        "ReplanRequest", "Replanner", "ResumeError", "Run", "RunCancelled", "RunEnded", "RunError",
        "RunNotFound", "RunPolicy", "RunResult", "RunResumed", "RunStarted", "RunStatus", "StepweaveError", "Target", "Task", "TaskAdded", "TaskEnded",
        "TaskError", "TaskFailed", "TaskGraph", "TaskProgress", "TaskReady", "TaskResult",
        "TaskRetrying", "TaskStarted", "TaskStatus", "TaskTimeout", "ToolCall", "WorkflowError",
    },
    "planners": {
        "AskResult", "CallUsage", "CompiledGuide", "Finding", "Guide", "GuideError", "LLMConfigError",
        "LLMPlanner", "Pricing", "Problem", "Usage", "Workflow", "WorkflowFileError",
        "check_configuration", "compile_guide", "lint_guide", "load_guide", "load_workflow",
        "parse_guide", "parse_workflow", "workflow_json_schema",
    },
    "orchestrator.devices": {
        "AgentProcess", "BrokerConnectionError", "BrokerKind", "BrokerSettings", "DeviceAgent",
        "DeviceExecutor", "DeviceInfo", "DeviceTrust", "DeviceUnavailable", "LocalBroker", "LocalFleet",
        "MessageRejected", "RemoteTaskError", "Topics", "current_device", "find_mosquitto",
        "load_tools", "mosquitto_acl", "mosquitto_config", "mosquitto_password_line", "parse_labels",
        "redact_url", "run_agent", "run_broker", "spawn_agent", "write_password_file",
    },
    "orchestrator.telemetry": {"enabled"},
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(EXPECTED))
def test_exports_are_exactly_the_public_api(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == EXPECTED[package]
    assert sorted(module.__all__) == list(module.__all__), "keep __all__ sorted"
    for name in module.__all__:
        assert getattr(module, name) is not None


def test_exception_tree_has_two_families() -> None:
    import orchestrator as o

    for definition in (o.GraphValidationError, o.ExpressionError, o.GraphEditError):
        assert issubclass(definition, o.WorkflowError) and issubclass(definition, ValueError)
    for runtime in (o.TaskFailed, o.TaskTimeout, o.RunCancelled, o.PlannerError, o.DeviceError):
        assert issubclass(runtime, o.RunError) and not issubclass(runtime, o.WorkflowError)
    assert issubclass(o.TaskTimeout, TimeoutError)


def test_errors_defined_elsewhere_sit_where_the_tree_draws_them() -> None:
    import orchestrator as o
    from orchestrator.devices import (
        BrokerConnectionError,
        DeviceUnavailable,
        MessageRejected,
        RemoteTaskError,
    )
    from planners import GuideError, LLMConfigError, WorkflowFileError

    for definition in (WorkflowFileError, GuideError, LLMConfigError):
        assert issubclass(definition, o.WorkflowError)
    for device in (BrokerConnectionError, DeviceUnavailable, MessageRejected, RemoteTaskError):
        assert issubclass(device, o.DeviceError)
    tree = o.errors.__doc__ or ""
    for name in (
        "WorkflowFileError",
        "GuideError",
        "LLMConfigError",
        "BrokerConnectionError",
        "RemoteTaskError",
    ):
        assert name in tree
