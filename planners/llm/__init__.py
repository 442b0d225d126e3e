"""The LLM planner: requests become streaming task graphs; a joiner answers or replans.

```python
from planners.llm import LLMPlanner
result = await LLMPlanner().ask("...", Orchestrator(tools, failure_policy="continue"))
```

``planners.llm.testing`` holds an OpenAI-compatible test server for tests and benchmarks.
"""

from .config import LLMConfig, LLMConfigError, check_configuration
from .events import (
    AskEnded,
    JoinerDecided,
    PlannerCallEnded,
    PlannerCallStarted,
    PlannerRetrying,
    PlanRejected,
)
from .formats import FormatMode, ServerMemory
from .planner import EventHandler, LLMPlanner, ResponseFormatChoice
from .result import AskResult, PlanRecord
from .schema import JoinDecision, PlanTask, join_schema, plan_schema
from .settings import Placement
from .stream import JsonScanner, ScannedTask
from .usage import CallKind, CallUsage, Pricing, Usage

__all__ = [
    "AskEnded",
    "AskResult",
    "CallKind",
    "CallUsage",
    "EventHandler",
    "FormatMode",
    "JoinDecision",
    "JoinerDecided",
    "JsonScanner",
    "LLMConfig",
    "LLMConfigError",
    "LLMPlanner",
    "Placement",
    "PlanRecord",
    "PlanRejected",
    "PlanTask",
    "PlannerCallEnded",
    "PlannerCallStarted",
    "PlannerRetrying",
    "Pricing",
    "ResponseFormatChoice",
    "ScannedTask",
    "ServerMemory",
    "Usage",
    "check_configuration",
    "join_schema",
    "plan_schema",
]
