"""Attribute and span names, in one place so the docs, the tests and the code agree.

``stepweave.*`` names are ours; ``gen_ai.*``, ``server.*`` and ``error.type`` follow the
OpenTelemetry semantic conventions (GenAI client spans and metrics).
"""

from __future__ import annotations

__all__ = [
    "DEVICE_ID",
    "ERROR_TYPE",
    "GEN_AI_INPUT_TOKENS",
    "GEN_AI_OPERATION",
    "GEN_AI_OUTPUT_TOKENS",
    "GEN_AI_PROVIDER",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_SYSTEM",
    "RUN_ID",
    "RUN_STATUS",
    "RUN_TASKS",
    "SCOPE",
    "TASK_ATTEMPT",
    "TASK_DURATION",
    "TASK_ERROR",
    "TASK_ID",
    "TASK_QUEUE_WAIT",
    "TASK_RETRIES",
    "TASK_RETRY_DELAY",
    "TASK_STATUS",
    "TASK_TOOL",
    "WORKFLOW_NAME",
]

#: The instrumentation scope of every tracer and meter.
SCOPE = "stepweave"

RUN_ID = "stepweave.run.id"
RUN_STATUS = "stepweave.run.status"
RUN_TASKS = "stepweave.run.tasks"
WORKFLOW_NAME = "stepweave.workflow.name"
TASK_ID = "stepweave.task.id"
TASK_TOOL = "stepweave.task.tool"
TASK_ATTEMPT = "stepweave.task.attempt"
TASK_STATUS = "stepweave.task.status"
TASK_ERROR = "stepweave.task.error"
DEVICE_ID = "stepweave.device.id"
ERROR_TYPE = "error.type"

GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_PROVIDER = "gen_ai.provider.name"
#: The older name of ``gen_ai.provider.name``; set too, as many backends still read it.
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TASK_RETRY_DELAY = "stepweave.task.retry_delay"

#: The task metrics: (name, unit, description). Made by ``spans`` in the traced process, or
#: from task records by the export process (``exportd``): one definition for both.
TASK_DURATION = ("stepweave.task.duration", "s", "Time from a task's first start to its end")
TASK_QUEUE_WAIT = ("stepweave.task.queue_wait", "s", "Time a ready task waited for its first start")
TASK_RETRIES = ("stepweave.task.retries", "{retry}", "Attempts that failed and were retried")
