"""``McpTool``: one tool of an MCP server as a stepweave ``Tool`` named ``SERVER.TOOL``.

Its arguments and result are described by the JSON Schemas the server lists, and checked
with ``jsonschema`` here before a call goes out (a workflow is checked before it runs,
like device-only tools). What comes back is untrusted data: the structured content when
the tool declares an output schema, else its text, and in both cases only plain JSON
values, so expressions never see an object of the SDK.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import ConfigDict, create_model

from ..base import Tool
from ..errors import ToolArgumentError, ToolResultError

__all__ = ["McpTool"]

#: Calls ``tool`` of the server with the (validated) arguments; returns the plain result.
CallMcp = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _tool_name(server: str, tool: str) -> str:
    """``server.tool``, with characters a stepweave tool name cannot hold replaced by ``_``."""
    safe = "".join(c if c.isalnum() or c in "_-." else "_" for c in tool)
    return f"{server}.{safe}"


@dataclass(eq=False)
class McpTool(Tool):
    """A tool served by an MCP server; its calls go to that server's session."""

    server: str = ""
    #: The tool's name on the server (the stepweave name is ``server.remote_name``).
    remote_name: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    mcp_output_schema: dict[str, Any] | None = None

    @classmethod
    def from_listing(
        cls,
        server: str,
        name: str,
        *,
        description: str | None,
        input_schema: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None,
        read_only: bool,
        call: CallMcp,
    ) -> McpTool:
        """Build the tool from one entry of the server's ``tools/list``; ``call`` runs it."""
        properties: Mapping[str, Any] = input_schema.get("properties") or {}
        required = set(input_schema.get("required") or ())
        # The model only names the arguments (planners read its fields); the JSON Schema
        # is what validates them. Names pydantic cannot hold are left out of it.
        fields: dict[str, Any] = {
            key: (Any, ... if key in required else None)
            for key in properties
            if key.isidentifier() and not key.startswith("_")
        }
        model = create_model(
            f"{server}_{name}_mcp_arguments".replace("-", "_").replace(".", "_"),
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )

        async def call_tool(**arguments: Any) -> Any:
            return await call(name, arguments)

        return cls(
            func=call_tool,
            name=_tool_name(server, name),
            description=description or "",
            args_model=model,
            return_type=Any,
            takes_context=False,
            is_async=True,
            read_only=read_only,
            server=server,
            remote_name=name,
            input_schema=dict(input_schema),
            mcp_output_schema=dict(output_schema) if output_schema is not None else None,
        )

    # -- schemas: exactly as the server lists them ----------------------------------------

    @cached_property
    def parameters_schema(self) -> dict[str, Any]:
        return self.input_schema

    @cached_property
    def return_schema(self) -> dict[str, Any] | None:
        return self.mcp_output_schema

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        # Without an output schema the result is the tool's text: a string.
        return self.mcp_output_schema if self.mcp_output_schema is not None else {"type": "string"}

    # -- validation with jsonschema --------------------------------------------------------

    def _problems(self, schema: Mapping[str, Any], value: Any) -> list[str]:
        from jsonschema import Draft202012Validator  # only runs with MCP tools pay for it

        if "$defs" not in schema and "$defs" in self.input_schema:
            schema = {**schema, "$defs": self.input_schema["$defs"]}
        problems = []
        for error in sorted(
            Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)
        ):
            where = ".".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: {error.message}" if where else error.message)
        return problems

    def check_arguments(self, args: Mapping[str, Any], dynamic: Collection[str] = ()) -> list[str]:
        properties: Mapping[str, Any] = self.input_schema.get("properties") or {}
        problems: list[str] = []
        for key in args:
            if key not in properties and self.input_schema.get("additionalProperties") is not True:
                hint = difflib.get_close_matches(key, list(properties), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(
                    f"unknown argument {key!r}{suggestion}; expected: {', '.join(properties) or 'none'}"
                )
        for key in self.input_schema.get("required") or ():
            if key not in args:
                problems.append(f"missing required argument {key!r}")
        for key, spec in properties.items():
            if key in args and key not in dynamic and isinstance(spec, dict):
                problems += [f"argument {key!r}: {p}" for p in self._problems(spec, args[key])]
        return problems

    def validate_arguments(self, args: Mapping[str, Any]) -> dict[str, Any]:
        problems = self.check_arguments(args) or self._problems(self.input_schema, dict(args))
        if problems:
            raise ToolArgumentError(
                f"invalid arguments for tool {self.name!r} (MCP server {self.server!r}): {'; '.join(problems)}"
            )
        return dict(args)

    def validate_result(self, value: Any) -> Any:
        if self.mcp_output_schema is None:
            return value
        problems = self._problems(self.mcp_output_schema, value)
        if problems:
            raise ToolResultError(
                f"tool {self.name!r} (MCP server {self.server!r}) returned a result that does not match "
                f"its output schema: {'; '.join(problems)}"
            )
        return value
