"""A command group that imports a command's module only when that command is used.

``stepweave --help`` lists every command from a table (name → module, one-line help)
without importing any of them; ``stepweave validate`` imports the workflows module, never
the devices, TSG or report code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from . import startup
from .conventions import adjust_params, conventional

__all__ = ["LazyCommand", "LazyGroup"]


class LazyCommand(NamedTuple):
    """Where a command lives (a module of this package with ``register(app)``) and the
    one line ``stepweave --help`` shows for it (a test keeps it equal to the docstring's)."""

    module: str
    help: str


class LazyGroup(TyperGroup):
    """A Typer group whose commands come from ``lazy`` until one is asked for."""

    lazy: Mapping[str, LazyCommand] = {}
    package: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        eager = [name for name in self.commands if name not in self.lazy]
        return [*self.lazy, *eager]

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        adjust_params(params, ctx)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return _resuming_gc(conventional(self.commands[cmd_name]))
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return None
        if self._listing:  # the group's own help: a stand-in with the one-line help
            return TyperCommand(cmd_name, help=entry.help)
        self._load(entry.module)
        command = self.commands.get(cmd_name)
        return None if command is None else _resuming_gc(conventional(command))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def _load(self, module_name: str) -> None:
        """Import the module and add every command it registers (a module may register
        several, and its commands may refer to each other's options)."""
        module = importlib.import_module(f"{self.package}.{module_name}")
        family = typer.Typer(rich_markup_mode=self.rich_markup_mode)
        module.register(family)
        loaded = typer.main.get_group(family)
        for name, command in loaded.commands.items():
            self.commands.setdefault(name, command)


def _resuming_gc(command: Any) -> Any:
    """``command`` (and its subcommands) with callbacks that end the start-up pause of
    the garbage collector (:mod:`.startup`) before their own code runs."""
    if command.callback is not None:
        command.callback = startup.resuming_on_call(command.callback)
    for sub in getattr(command, "commands", {}).values():
        _resuming_gc(sub)
    return command
