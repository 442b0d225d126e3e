"""``Workflow``: the YAML file format as a pydantic model, and what you do with one.

A parsed workflow has the right *shape*; ``problems()`` says whether it makes *sense*
(tools exist, references resolve, no cycles), ``to_graph()`` turns it into the engine's
``TaskGraph``, and ``evaluate_outputs()`` computes its outputs after a run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from orchestrator import RunResult, TaskGraph
from tools import ToolRegistry

if TYPE_CHECKING:
    from tools.mcp import McpServers

from .checks import find_problems, step_tasks
from .inputs import Input, resolve_inputs
from .lint import find_warnings
from .mcp_servers import McpServerEntry, ServerName
from .outputs import evaluate_outputs
from .problems import Problem, WorkflowFileError
from .steps import Defaults, Step
from .yaml_source import SourceMap, paused_gc

__all__ = ["Workflow"]

_ITEM_SUFFIX = re.compile(r"\[[0-9]+\]$")

InputName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
OutputName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$")]


class Workflow(BaseModel):
    """A workflow file: typed inputs, steps (tool calls) with policy, and named outputs."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        title="stepweave workflow",
    )

    name: Annotated[
        str, Field(min_length=1, description="Short name of the workflow (used in run listings).")
    ]
    description: str = Field("", description="What the workflow does and when to run it.")
    inputs: dict[InputName, Input] = Field(
        default_factory=dict, description="Values given at run time, read as ${{ inputs.<name> }}."
    )
    defaults: Defaults = Field(
        default_factory=Defaults, description="Policy for every step that does not set its own."
    )
    steps: list[Step] = Field(
        min_length=1, description="The tool calls; they run as soon as what they need has ended."
    )
    outputs: dict[OutputName, Any] = Field(
        default_factory=dict,
        description="Values computed after the run, e.g. ${{ steps.disk.output.stdout }}.",
    )
    mcp_servers: dict[ServerName, McpServerEntry] = Field(
        default_factory=dict,
        description="MCP servers whose tools steps call as NAME.TOOL: {command: [argv...], env: {...}} "
        "(stdio) or {url: http://...} (streamable HTTP).",
    )

    _source_map: SourceMap = PrivateAttr(default_factory=SourceMap)
    _checked: bool = PrivateAttr(default=False)

    # -- where it came from --------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The path of the file (or the name given to ``parse_workflow``), if any."""
        return self._source_map.file

    @property
    def source_map(self) -> SourceMap:
        """Positions of every key and value in the file (empty for a workflow built in Python)."""
        return self._source_map

    def line_of(self, step_id: str) -> int | None:
        """The line a step starts on; fanned-out items (``sizes[2]``) map to their step."""
        step_id = _ITEM_SUFFIX.sub("", step_id)
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                mark = self._source_map.values.get(("steps", index))
                return mark.line if mark else None
        return None

    # -- checking and converting ----------------------------------------------------------

    def problems(self, tools: ToolRegistry | None = None) -> list[Problem]:
        """Every problem, in file order: duplicate ids, unknown steps, tools and inputs, bad
        arguments, cycles, bad outputs. Tools are checked only when ``tools`` is given."""
        with paused_gc():  # tens of thousands of compiled tasks: see paused_gc
            problems = sorted(find_problems(self, tools), key=lambda p: (p.line or 0, p.column or 0))
        # Checking a big workflow takes seconds: remember that it passed (the model is
        # frozen), so ``to_graph`` does not check it again. With tools, more is checked.
        self._checked = self._checked or not problems
        return problems

    def start_mcp_servers(self) -> McpServers:
        """The ``mcp_servers:`` as ``McpServers``: ``async with`` it to run them for a run.

        ```python
        async with workflow.start_mcp_servers() as servers:
            tools = ToolRegistry([*builtin_registry(), *servers.tools])
            if problems := workflow.problems(tools): ...
            result = await Orchestrator(tools).run(workflow.to_graph(), inputs=workflow.resolve_inputs())
        ```
        """
        from tools.mcp import McpServer, McpServers

        return McpServers(
            McpServer(name, command=entry.command or (), env=entry.env, url=entry.url)
            for name, entry in self.mcp_servers.items()
        )

    def warnings(self) -> list[Problem]:
        """What is allowed but likely wrong, in file order (``Problem.severity == "warning"``):
        an expression pasted into a ``sh -c`` script or an SQL query (injection)."""
        return sorted(find_warnings(self), key=lambda p: (p.line or 0, p.column or 0))

    def to_graph(self) -> TaskGraph:
        """The engine's graph: one task per step, defaults applied, ``needs`` as ``deps``.

        Raises ``WorkflowFileError`` listing every problem (tools are checked when the
        orchestrator starts the run; call ``problems(tools)`` to check them first).
        """
        problems = [] if self._checked else self.problems()
        if problems:
            raise WorkflowFileError(problems)
        with paused_gc():
            return TaskGraph(step_tasks(self), name=self.name)

    def resolve_inputs(
        self, overrides: Mapping[str, Any] | None = None, *, from_strings: bool = False
    ) -> dict[str, Any]:
        """Input values for a run: ``overrides`` over defaults, type-checked.

        With ``from_strings`` the overrides are ``--set name=value`` strings, parsed by the
        declared type (``"3"`` → 3, JSON for arrays and objects, true/false/yes/no/1/0).
        """
        return resolve_inputs(self.inputs, overrides, from_strings=from_strings, source_map=self._source_map)

    def evaluate_outputs(self, result: RunResult, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The ``outputs`` computed from a run's results (``WorkflowFileError`` if one cannot be)."""
        return evaluate_outputs(self.outputs, result, inputs, self._source_map)
