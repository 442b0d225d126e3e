"""Tools: typed functions that do the work of a step.

``tools`` depends on nothing else in stepweave. See ``tools.errors`` for the exception tree.
"""

from .base import ReadOnly, SyncRunner, Tool, tool
from .context import ProgressReporter, ToolContext
from .errors import (
    ToolArgumentError,
    ToolDefinitionError,
    ToolError,
    ToolNotFoundError,
    ToolResultError,
)
from .loading import load_tools
from .prompter import Decision, Prompter
from .registry import ToolRegistry

__all__ = [
    "Decision",
    "ProgressReporter",
    "Prompter",
    "ReadOnly",
    "SyncRunner",
    "Tool",
    "ToolArgumentError",
    "ToolContext",
    "ToolDefinitionError",
    "ToolError",
    "ToolNotFoundError",
    "ToolRegistry",
    "ToolResultError",
    "load_tools",
    "tool",
]
