"""The fleet's tools: what live devices announce is the contract for device steps.

An orchestrator can drive devices whose code it does not have: each device's retained
status carries its tools' JSON Schemas (arguments and result). ``fleet_tools`` turns the
announcements of the live devices into ``RemoteTool`` objects, which validate a workflow
(unknown arguments, types of constant arguments), check the arguments of every call
before it is sent and the result that comes back, and describe the tool to a planner.
A local copy of a tool, when present, must announce the same argument schema; it is then
used for validation only (the devices run the tool).

Devices may disagree (a fleet half upgraded): the version most devices offer wins, and
the devices with another version are not sent its calls (the dispatcher matches schema
digests), which ``FleetTool.others`` records so a message can say so.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ConfigDict, create_model

from tools import Tool
from tools.errors import ToolArgumentError, ToolError, ToolResultError

from ..graph import DeviceTarget, LabelsTarget, Target, Task
from .protocol import Capability, schema_digest
from .registry import DeviceInfo

__all__ = ["FleetPlacement", "FleetTool", "RemoteTool", "fleet_problems", "fleet_tools", "where_it_runs"]


def _local_only(*_args: Any, **_kwargs: Any) -> Any:
    raise ToolError("this tool exists only on device agents: give its step a device target")


@dataclass(eq=False)
class RemoteTool(Tool):
    """A tool known from a device's announcement; its calls can only run on devices."""

    announced_parameters: dict[str, Any] = field(default_factory=dict)
    announced_returns: dict[str, Any] | None = None

    @classmethod
    def from_capability(
        cls, capability: Capability, *, read_only: Callable[[], bool] | None = None
    ) -> RemoteTool:
        """Build the tool from ``capability``; ``read_only()`` says whether every device
        offering it announces it read-only (asked at each call, the fleet changes)."""
        schema = capability.parameters
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        fields: dict[str, Any] = {
            name: (Any, ... if name in required else spec.get("default") if isinstance(spec, dict) else None)
            for name, spec in properties.items()
        }
        model = create_model(
            f"{capability.name.replace('.', '_').replace('-', '_')}_announced_arguments",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
        return cls(
            func=_local_only,
            name=capability.name,
            description=capability.description,
            args_model=model,
            return_type=Any,
            takes_context=False,
            is_async=False,
            read_only=(lambda _args: read_only()) if read_only is not None else capability.read_only,
            announced_parameters=dict(schema),
            announced_returns=dict(capability.returns) if capability.returns is not None else None,
        )

    @cached_property
    def parameters_schema(self) -> dict[str, Any]:
        """The schema exactly as announced (its digest is what the devices announce)."""
        return self.announced_parameters

    @cached_property
    def return_schema(self) -> dict[str, Any] | None:
        return self.announced_returns

    def _problems(self, schema: Mapping[str, Any], value: Any) -> list[str]:
        # Imported here: only runs that use device-only tools pay for it.
        from jsonschema import Draft202012Validator

        if "$defs" not in schema and "$defs" in self.announced_parameters:
            schema = {**schema, "$defs": self.announced_parameters["$defs"]}
        validator = Draft202012Validator(schema)
        problems = []
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: {error.message}" if where else error.message)
        return problems

    def check_arguments(self, args: Mapping[str, Any], dynamic: Collection[str] = ()) -> list[str]:
        properties: Mapping[str, Any] = self.announced_parameters.get("properties") or {}
        problems: list[str] = []
        for key in args:
            if key not in properties:
                hint = difflib.get_close_matches(key, list(properties), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(
                    f"unknown argument {key!r}{suggestion}; expected: {', '.join(properties) or 'none'}"
                )
        for name in self.announced_parameters.get("required") or ():
            if name not in args:
                problems.append(f"missing required argument {name!r}")
        for name, spec in properties.items():
            if name in args and name not in dynamic and isinstance(spec, dict):
                problems += [f"argument {name!r}: {p}" for p in self._problems(spec, args[name])]
        return problems

    def validate_arguments(self, args: Mapping[str, Any]) -> dict[str, Any]:
        problems = self._problems(self.announced_parameters, dict(args))
        if problems:
            raise ToolArgumentError(
                f"invalid arguments for tool {self.name!r} (as its devices announce it): {'; '.join(problems)}"
            )
        return dict(args)

    def validate_result(self, value: Any) -> Any:
        if self.announced_returns is None:
            return value
        problems = self._problems(self.announced_returns, value)
        if problems:
            raise ToolResultError(
                f"tool {self.name!r} returned {type(value).__name__}, which does not match the result "
                f"schema its devices announce: {'; '.join(problems)}"
            )
        return value


@dataclass
class FleetTool:
    """One tool as the live fleet offers it."""

    #: The version most devices offer (ties: the one of the first device by id).
    capability: Capability
    #: Live devices offering that version.
    devices: list[DeviceInfo]
    #: Live devices offering another version (the dispatcher does not use them for it).
    others: list[DeviceInfo]

    def runs_on(self) -> str:
        """Where it can run, for a prompt or a table: ``lab-1 (site=lab), lab-2 (site=lab)``."""
        return ", ".join(_describe(d) for d in self.devices)


def _describe(device: DeviceInfo) -> str:
    labels = ",".join(f"{k}={v}" for k, v in sorted(device.labels.items()))
    return f"{device.device_id} ({labels})" if labels else device.device_id


def fleet_tools(
    devices: Iterable[DeviceInfo], capabilities: Mapping[str, Mapping[str, Capability]]
) -> dict[str, FleetTool]:
    """The tools the live ``devices`` offer, by name.

    ``capabilities`` maps a device id to its announced capabilities by tool name.
    """
    versions: dict[str, dict[str, list[DeviceInfo]]] = {}
    chosen: dict[str, dict[str, Capability]] = {}
    for device in sorted(devices, key=lambda d: d.device_id):
        if not device.alive:
            continue
        for name, capability in capabilities.get(device.device_id, {}).items():
            versions.setdefault(name, {}).setdefault(capability.digest, []).append(device)
            chosen.setdefault(name, {}).setdefault(capability.digest, capability)
    tools: dict[str, FleetTool] = {}
    for name, by_digest in sorted(versions.items()):
        # Most devices first; on a tie, the version of the device first by id (stable).
        digest = min(by_digest, key=lambda d: (-len(by_digest[d]), by_digest[d][0].device_id))
        others = [device for other, offering in by_digest.items() if other != digest for device in offering]
        tools[name] = FleetTool(chosen[name][digest], by_digest[digest], others)
    return tools


def where_it_runs(target: Target, devices: Iterable[DeviceInfo]) -> list[DeviceInfo]:
    """The ``devices`` that match ``target`` (by id or labels; anything else matches all)."""
    if isinstance(target, DeviceTarget):
        return [d for d in devices if d.device_id == target.device]
    if isinstance(target, LabelsTarget):
        return [d for d in devices if all(d.labels.get(k) == v for k, v in target.labels.items())]
    return list(devices)


def fleet_problems(
    tasks: Iterable[Task], tools: Mapping[str, Tool], fleet: Mapping[str, FleetTool]
) -> list[tuple[str, str]]:
    """``(task id, problem)`` for each task the live fleet cannot run as written.

    A device task needs a live device that offers its tool with the schema we validate
    against, and matches its target; a task that runs here needs a tool we have.
    """
    problems: list[tuple[str, str]] = []
    for task in tasks:
        tool = tools.get(task.tool)
        if task.is_local:
            if isinstance(tool, RemoteTool):
                problems.append(
                    (
                        task.id,
                        f"tool {task.tool!r} exists only on devices: give the step a target (any-device)",
                    )
                )
            continue
        offered = fleet.get(task.tool)
        if offered is None:
            problems.append((task.id, f"no live device offers tool {task.tool!r}"))
            continue
        stale = (
            tool is not None
            and not isinstance(tool, RemoteTool)
            and schema_digest(tool.parameters_schema) != offered.capability.digest
        )
        if stale:
            problems.append(
                (
                    task.id,
                    f"the local copy of tool {task.tool!r} has another argument schema than the one "
                    f"the devices announce ({offered.runs_on()}): update one or the other",
                )
            )
            continue
        if not where_it_runs(task.target, offered.devices):
            problems.append(
                (task.id, f"its target fits none of the devices offering {task.tool!r}: {offered.runs_on()}")
            )
    return problems


class FleetPlacement:
    """Where an LLM planner's tasks run over a fleet (``planners.llm.Placement``).

    A tool the fleet offers runs on a device (``target``: any device, or ``--on`` labels);
    any other runs here. ``fleet()`` is asked each time, so a plan, repair or replan sees
    the fleet as it is then: a tool whose devices went away is shown as such in the prompt,
    and a task that needs it is rejected (the model repairs the plan) instead of waiting.
    """

    def __init__(
        self,
        fleet: Callable[[], Mapping[str, FleetTool]],
        tools: Mapping[str, Tool],
        *,
        target: Target = "any-device",
    ) -> None:
        self.fleet = fleet
        self._tools = tools
        self._target = target

    def _remote(self, tool: str) -> bool:
        return isinstance(self._tools.get(tool), RemoteTool) or tool in self.fleet()

    def target(self, tool: str) -> Target:
        return self._target if self._remote(tool) else "local"

    def where(self, tool: str) -> str | None:
        if not self._remote(tool):
            return None
        offered = self.fleet().get(tool)
        fitting = [] if offered is None else where_it_runs(self._target, offered.devices)
        if not fitting:
            return "no live device offers it now: do not use it"
        return "runs on " + ", ".join(_describe(d) for d in fitting)

    def problem(self, task: Task) -> str | None:
        problems = fleet_problems([task], self._tools, self.fleet())
        return "; ".join(problem for _, problem in problems) or None

    def read_only(self, tool: str) -> bool:
        """Whether every live device offering ``tool`` announces it read-only (and one does)."""
        offered = self.fleet().get(tool)
        return offered is not None and all(tool in d.read_only_tools for d in offered.devices)
