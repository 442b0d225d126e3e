"""Help that reads like ``gh``, ``kubectl`` and ``uv``: ``Usage: stepweave validate
[OPTIONS] FLOW``, ``--tools MODULE``, ``--max-concurrency N``, and flags without a type.

Typer's own help shows ``{flow}``, ``<bool>``, ``<list[str]>`` and ``<int range>``; these
classes change only how parameters are displayed, never how they parse. ``conventional``
applies them to a command and everything below it (commands come from many modules, so
they are adjusted where the CLI assembles them rather than in every ``@app.command``).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

__all__ = ["METAVARS", "adjust_params", "conventional"]


class _Argument(TyperArgument):
    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1:
            name += "..."
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the metavar (FLOW, RUN_ID) says what it is


#: What an option's value is, by option name: the same words on every command.
METAVARS = {
    "--acl-file": "FILE",
    "--allow": "TOOL",
    "--allow-env": "NAME",
    "--base-url": "URL",
    "--broker": "URL",
    "--device": "ID",
    "--device-label": "KEY=VALUE",
    "--env": "NAME",
    "--format": "FORMAT",
    "--host": "HOST",
    "--id": "ID",
    "--incident": "FILE",
    "--journal": "PATH|URL",
    "--kind": "KIND",
    "--label": "KEY=VALUE",
    "--local-label": "KEY=VALUE",
    "--model": "NAME",
    "--namespace": "PREFIX",
    "--older-than": "AGE",
    "--on": "KEY=VALUE",
    "--output": "FILE",
    "--password-file": "FILE",
    "--report": "FILE",
    "--retry-inflight": "POLICY",
    "--set": "NAME=VALUE",
    "--timeout": "SECONDS",
    "--tls-cert": "FILE",
    "--tls-key": "FILE",
    "--tools": "MODULE",
}


def _option_metavar(option: TyperOption, ctx: Any) -> str:
    if option.is_flag or option.count:
        return ""
    for name in option.opts:
        if name in METAVARS:
            return METAVARS[name]
    descriptor = option.type_descriptor
    if descriptor.is_choice:
        return option.display_type(ctx).strip("<>").removeprefix("list[").removesuffix("]")
    annotation = descriptor.annotation
    if annotation is int or descriptor.is_ranged:
        return "N"
    if annotation is float:
        return "NUMBER"
    longest = max(option.opts, key=len)
    return longest.lstrip("-").replace("-", "_").upper()


def adjust_params(params: list[Any], ctx: Any) -> None:
    for param in params:
        if type(param) is TyperArgument:
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _Argument
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = _option_metavar(param, ctx)


# (No shared mixin: a second base class would change the object layout, and
# `conventional` swaps the class of objects Typer already built.)
class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        adjust_params(params, ctx)
        return params


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        adjust_params(params, ctx)
        return params


def conventional(command: Any) -> Any:
    """``command`` (and its subcommands) with conventional help; returns it."""
    if type(command) is TyperCommand:
        command.__class__ = _Command
    elif type(command) is TyperGroup:
        command.__class__ = _Group
        for sub in command.commands.values():
            conventional(sub)
    return command
