"""Warnings: what a workflow may do but most likely should not.

The one warning so far is **injection**: an expression pasted into code that another
program parses. ``argv: [sh, -c, "ping ${{ inputs.host }}"]`` hands the *value* to the
shell as script text, so ``--set 'host=x; rm -rf ~'`` runs ``rm``. The same holds for
``python -c``, ``perl -e`` and friends, a shell reading its script from ``stdin``, and a
``sql`` query. The fix is always to pass the value as data: an environment variable
(``set_env``) or its own argv item for a shell, ``params`` for SQL. Warnings never stop
a run: the value may be trusted (a constant input), and only the author knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .problems import Problem
from .yaml_source import Path

if TYPE_CHECKING:
    from .model import Workflow

__all__ = ["find_warnings"]

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "csh", "tcsh"})
#: Interpreters that take a program as the argument after one of these options.
_CODE_OPTIONS = {
    "python": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "php": frozenset({"-r"}),
    "pwsh": frozenset({"-c", "-command", "-Command"}),
    "osascript": frozenset({"-e"}),
}
_VERSION_SUFFIX = re.compile(r"[0-9.]+$")
#: Shell options that take the next argument as their value (``-o pipefail``).
_SHELL_OPTIONS_WITH_VALUE = frozenset({"-o", "+o", "-O", "+O"})
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def find_warnings(workflow: Workflow) -> list[Problem]:
    """Every warning of ``workflow``, each at the line of the value it is about."""
    warnings: list[Problem] = []
    for index, step in enumerate(workflow.steps):
        for path, what, fix in _injections(step.tool, step.args):
            message = f"{_label(('args', *path))}: ${{{{ … }}}} is pasted into {what}"
            where = ("steps", index, "args", *path)
            warnings.append(
                workflow.source_map.problem(where, message, step=step.id, hint=fix, severity="warning")
            )
    return warnings


def _injections(tool: str, args: dict[str, Any]) -> Iterator[tuple[Path, str, str]]:
    """``(path in args, what the text becomes, how to pass the value instead)``."""
    runs_as_code = "a value with ; $( ) or quotes in it runs as code"
    argv = args.get("argv")
    if tool == "shell" and isinstance(argv, list) and all(isinstance(a, str) for a in argv):
        found = _code_argument(argv)
        if found is not None:
            index, how = found
            if _has_expression(argv[index]):
                yield ("argv", index), f"a `{how}` script: {runs_as_code}", _ENV_FIX
        elif _reads_script_from_stdin(argv) and _has_expression(args.get("stdin")):
            yield (
                ("stdin",),
                f"the script a shell reads from stdin: {runs_as_code}",
                _ENV_FIX,
            )
    if tool == "sql" and _has_expression(args.get("query")):
        yield (
            ("query",),
            "an SQL query: a value with a quote in it changes the query",
            _SQL_FIX,
        )


_ENV_FIX = (
    'pass the value as data: set_env: {HOST: "${{ inputs.host }}"} and "$HOST" in the script, '
    'or as its own argv item after the script (read as "$1")'
)
_SQL_FIX = 'pass the value as a parameter: query: "… WHERE name = ?", params: ["${{ inputs.name }}"]'


def _label(path: Path) -> str:
    """``args.argv[2]``: how the value is written in the file."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")


def _has_expression(value: Any) -> bool:
    return isinstance(value, str) and "${{" in value


def _program(argv: Sequence[str]) -> tuple[int, str] | None:
    """The index and bare name of the program ``argv`` runs, looking through ``env`` and ``busybox``."""
    index = 0
    while index < len(argv):
        name = _VERSION_SUFFIX.sub("", argv[index].rsplit("/", 1)[-1])
        if name == "env":  # env [-i] [NAME=value ...] program ...
            index += 1
            while index < len(argv) and (argv[index].startswith("-") or _ENV_ASSIGNMENT.match(argv[index])):
                index += 1
            continue
        if name in ("busybox", "exec", "nohup", "nice", "timeout", "sudo", "doas"):
            index += 1
            while index < len(argv) and (argv[index].startswith("-") or argv[index][:1].isdigit()):
                index += 1
            continue
        return index, name
    return None


def _code_argument(argv: Sequence[str]) -> tuple[int, str] | None:
    """The index of the argument that is program text (``sh -c TEXT``), and how it is run."""
    found = _program(argv)
    if found is None:
        return None
    start, name = found
    if name in _SHELLS:
        command_string = False
        index = start + 1
        while index < len(argv):
            arg = argv[index]
            if arg == "--":
                index += 1
                break
            if arg in _SHELL_OPTIONS_WITH_VALUE:
                index += 2
                continue
            if not arg.startswith(("-", "+")) or arg in ("-", "+"):
                break
            if not arg.startswith("--") and "c" in arg[1:]:
                command_string = True
            index += 1
        # POSIX: with -c, the first operand is the command string.
        return (index, f"{name} -c") if command_string and index < len(argv) else None
    options = _CODE_OPTIONS.get(name)
    if options:
        for index in range(start + 1, len(argv) - 1):
            if argv[index] in options:
                return index + 1, f"{name} {argv[index]}"
    return None


def _reads_script_from_stdin(argv: Sequence[str]) -> bool:
    """A shell given no script operand (``[sh]``, ``[bash, -s]``, ``[sh, -e]``) reads stdin."""
    found = _program(argv)
    if found is None or found[1] not in _SHELLS:
        return False
    rest = argv[found[0] + 1 :]
    return all(arg.startswith(("-", "+")) for arg in rest) or "-s" in rest
