"""Commands found in a guide: which code lines are commands, and how each becomes a tool call.

Code blocks in real guides mix commands with sample output. Lines after a ``$`` prompt
(and ``#`` in ``console`` blocks, the root prompt) are commands; in a block without prompts
a line is a command when it starts with a known program (or, in a ``shell``/``bash``
block, looks like ``program --flag``); everything else is output and is kept out.

Shell commands run through the ``shell`` tool as argument lists. A command that needs a
shell (pipes, ``&&``, redirections, ``$( … )``) runs as ``sh -c TEXT`` — deliberately, and
only after it was classified as a whole (every part of the pipeline counts); placeholders
then reach the shell as environment variables (``set_env``), never pasted into the text,
so an input value cannot inject shell syntax. SQL placeholders become ``?`` parameters.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from .classify import KNOWN_PROGRAMS, Classification, classify_query, classify_shell, classify_sql
from .literal import literal
from .placeholders import ENVIRONMENT_NAMES, PLACEHOLDER, Placeholder, find_placeholders, input_name
from .rules import value_options
from .shell import ShellSyntaxError, needs_shell, parse_shell

__all__ = [
    "QUERY_LANGUAGES",
    "SHELL_LANGUAGES",
    "Command",
    "commands_in_block",
    "inline_command",
    "placeholder_notes",
    "shell_view",
]

SHELL_LANGUAGES = frozenset(
    {
        "shell",
        "bash",
        "sh",
        "zsh",
        "ksh",
        "console",
        "shell-session",
        "terminal",
        "shellscript",
        "bash-session",
    }
    | {"azurecli", "azurecli-interactive", "azcli", "azure-cli"}
)
QUERY_LANGUAGES = frozenset({"promql", "logql", "kql", "kusto", "traceql", "metricsql"})
SQL_LANGUAGES = frozenset({"sql", "sqlite", "postgresql", "mysql"})
_PROMQL_SHAPE = re.compile(r"\w+\s*\(|\{\s*\w+\s*=~?\s*\"|\[\d+[smhdw]\]")
_ASSIGNMENT_NOTE = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_]*)=['\"]?(.*?)['\"]?\s*$")


@dataclass
class Command:
    """One runnable command, with where it came from and what it may change."""

    text: str
    language: str  # shell, sql, or a query language such as promql
    line: int
    classification: Classification
    placeholders: list[Placeholder] = field(default_factory=list)
    origin: str = "guide"  # "llm" when --llm proposed it for a prose-only step

    @property
    def effect(self) -> str:
        return self.classification.effect

    @property
    def tool(self) -> str:
        if self.language == "shell":
            return "shell"
        if self.language == "sql":
            return "sql"
        return self.language

    def needs_shell(self) -> bool:
        return self.language == "shell" and needs_shell(shell_view(self.text))

    def words(self) -> list[str]:
        """The words of a command that needs no shell, placeholders still as written."""
        angles: list[str] = []

        def hide(match: re.Match[str]) -> str:
            angles.append(match.group(0))
            return f"\x01{len(angles) - 1}\x01"

        try:
            parsed = parse_shell(_ANGLE.sub(hide, self.text))
        except ShellSyntaxError:
            return shlex.split(self.text)
        return [
            re.sub("\x01(\\d+)\x01", lambda m: angles[int(m.group(1))], w.text)
            for c in parsed.commands
            for w in c.words
        ]

    def argv(self) -> list[str]:
        """The argument list (placeholders still as written), for display and classification."""
        return self.words() if not self.needs_shell() else ["sh", "-c", self.text]

    def template(self) -> str:
        """The command on one line, placeholders as ``${{ inputs.<name> }}`` (for a person to run)."""
        return PLACEHOLDER.sub(_reference, literal(re.sub(r"\s+", " ", self.text).strip()))

    def tool_args(self) -> dict[str, Any]:
        """Arguments of the tool call, with placeholders as ``${{ inputs.<name> }}``.

        The guide's own text is escaped (``literal``) so nothing in it is evaluated; only the
        references made here are expressions.
        """
        if self.language == "sql":
            params: list[str] = []

            def to_param(match: re.Match[str]) -> str:
                raw = match.group("braced") or match.group("bare") or match.group("angle")
                if raw in ENVIRONMENT_NAMES:
                    return match.group(0)
                params.append(f"${{{{ inputs.{input_name(raw)} }}}}")
                return "?"

            # '$HOST' in quotes is still one value: the quotes go, the parameter stays.
            quoted = re.compile(rf"'(?:{PLACEHOLDER.pattern})'")
            query = quoted.sub(to_param, literal(self.text.strip().rstrip(";")))
            query = PLACEHOLDER.sub(to_param, query)
            args: dict[str, Any] = {"path": "${{ inputs.database }}", "query": query}
            if params:
                args["params"] = params
            if self.effect == "write":
                args["write"] = True  # approved before it runs; the sql tool opens read-only otherwise
            return args
        if self.language != "shell":
            return {"query": PLACEHOLDER.sub(_reference, literal(self.text.strip()))}
        if not self.needs_shell():
            return {"argv": [PLACEHOLDER.sub(_reference, literal(token)) for token in self.words()]}
        names = {p.name for p in self.placeholders}
        result: dict[str, Any] = {"argv": ["sh", "-c", literal(_quote_placeholders(self.text, names))]}
        if names:
            result["set_env"] = {name: f"${{{{ inputs.{name} }}}}" for name in sorted(names)}
        return result

    def operand_placeholders(self) -> list[tuple[str, str]]:
        """(placeholder, program) for each placeholder that starts a word a program reads as an
        operand or option: a value starting with ``-`` there would become an option."""
        if self.language != "shell":
            return []
        try:
            parsed = parse_shell(shell_view(self.text))
        except ShellSyntaxError:
            return [(p.name, "sh") for p in self.placeholders]
        found: list[tuple[str, str]] = []
        for command in parsed.commands:
            words = [w.text for w in command.words]
            program = words[0] if words else ""
            options = value_options(program)
            ended = False
            for index, word in enumerate(words):
                if word == "--" and index:
                    ended = True  # after --, nothing is an option
                    continue
                match = PLACEHOLDER.match(word)
                if match is None or ended:
                    continue
                raw = match.group("braced") or match.group("bare") or match.group("angle")
                if raw in ENVIRONMENT_NAMES:
                    continue
                previous = words[index - 1] if index else ""
                takes_value = previous in options or (
                    len(previous) > 1
                    and previous[0] == "-"
                    and previous[1] != "-"
                    and f"-{previous[-1]}" in options
                )
                if not takes_value:
                    found.append((input_name(raw), program))
        return found


_ANGLE = re.compile(r"<([A-Za-z][A-Za-z0-9_\-]*)>")


def shell_view(text: str) -> str:
    """``text`` with ``<name>`` placeholders written as ``${name}``, so ``<`` is not a redirection."""
    return _ANGLE.sub(lambda m: "${" + input_name(m.group(1)) + "}", text)


def _quote_placeholders(text: str, names: set[str]) -> str:
    """Each placeholder as ``"${NAME}"``: one word, never split or globbed, wherever it stands.

    Inside double quotes it is ``${NAME}``; inside single quotes the quote is closed around
    ``"${NAME}"`` so the value is still substituted as one piece of that word.
    """
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and quote != "'":
            out.append(text[index : index + 2])
            index += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
            out.append(char)
            index += 1
            continue
        match = PLACEHOLDER.match(text, index)
        if match is not None:
            raw = match.group("braced") or match.group("bare") or match.group("angle")
            name = input_name(raw)
            if raw not in ENVIRONMENT_NAMES and name in names:
                expansion = "${" + name + "}"
                out.append({None: f'"{expansion}"', '"': expansion, "'": f"'\"{expansion}\"'"}[quote])
                index = match.end()
                continue
        out.append(char)
        index += 1
    return "".join(out)


def _reference(match: re.Match[str]) -> str:
    raw = match.group("braced") or match.group("bare") or match.group("angle")
    if raw in ENVIRONMENT_NAMES:
        return match.group(0)
    return f"${{{{ inputs.{input_name(raw)} }}}}"


def _classify(text: str, language: str) -> Classification:
    if language == "shell":
        return classify_shell(shell_view(text))
    if language == "sql":
        return classify_sql(text)
    return classify_query(language, text)


def make_command(text: str, language: str, line: int) -> Command:
    return Command(text, language, line, _classify(text, language), find_placeholders(text))


def _plausible(line: str, language: str) -> bool:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    if not words:
        return False
    program = words[0]
    if program.rsplit("/", 1)[-1] in KNOWN_PROGRAMS:
        return True
    if language == "console":
        return False
    if program.startswith(("./", "/", "~/")):
        return True
    shaped = re.fullmatch(r"[a-z][a-z0-9._+-]*", program) is not None and not line.rstrip().endswith(":")
    return shaped and any(w.startswith("-") for w in words[1:])


def _logical_lines(text: str, first_line: int) -> list[tuple[int, str]]:
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = first_line
    for offset, raw in enumerate(text.splitlines()):
        line = raw.rstrip()
        if not pending:
            start = first_line + offset
        stripped = line.rstrip("\\").rstrip() if line.endswith("\\") else line
        pending.append(stripped.strip() if pending else stripped)
        if line.endswith("\\") or line.endswith("|") or line.endswith("&&"):
            continue
        result.append((start, " ".join(pending)))
        pending = []
    if pending:
        result.append((start, " ".join(pending)))
    return result


def block_language(language: str, text: str) -> str | None:
    """The language a block's commands are in, or None when it holds no commands (data, output)."""
    if language in SHELL_LANGUAGES:
        return "console" if language in ("console", "shell-session", "terminal") else "shell"
    if language in SQL_LANGUAGES:
        return "sql"
    if language in QUERY_LANGUAGES:
        return "kql" if language == "kusto" else language
    if language:
        return None  # yaml, json, text, go, ...: sample data
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("$ ") or _plausible(line, "console") for line in lines):
        return "console"
    if lines and _PROMQL_SHAPE.search(text) and not text.lstrip().startswith(("{\n", "[")):
        return "promql"
    return None


def commands_in_block(language: str, text: str, fence_line: int) -> list[Command]:
    """The commands in one code block (fence on ``fence_line``); output lines are dropped."""
    kind = block_language(language, text)
    if kind is None:
        return []
    first = fence_line + 1
    if kind in ("sql", *QUERY_LANGUAGES):
        body = text.strip()
        if not body:
            return []
        if kind == "sql":
            statements = [s.strip() for s in body.split(";") if s.strip()]
            return [make_command(s, "sql", first) for s in statements]
        return [make_command(body, kind, first)]
    lines = _logical_lines(text, first)
    prompts = ("$ ", "# ") if kind == "console" else ("$ ",)
    has_prompts = any(line.lstrip().startswith(prompts) or line.strip() == "$" for _, line in lines)
    commands: list[Command] = []
    for number, line in lines:
        body = line.strip()
        if has_prompts:
            if not body.startswith(prompts):
                continue
            body = body[2:].strip()
        elif body.startswith("#") or not _plausible(body, kind):
            continue
        if not body or body in ("exit", "logout"):
            continue  # leaving an interactive shell is not a step
        commands.append(make_command(body, "shell", number))
    return commands


def placeholder_notes(text: str) -> dict[str, str]:
    """``# NAMESPACE='<value of namespace label from alert>'`` comments: where a value comes from."""
    notes: dict[str, str] = {}
    for raw in text.splitlines():
        match = _ASSIGNMENT_NOTE.match(raw.strip())
        if match:
            notes[input_name(match.group(1))] = match.group(2).strip("<>")
    return notes


def inline_command(code: str) -> Command | None:
    """Inline code that is clearly a command (``kubectl describe rc ${NAME}``), else None."""
    if "..." in code or "\n" in code:
        return None
    try:
        words = shlex.split(code)
    except ValueError:
        return None
    if len(words) < 3 or words[0] not in KNOWN_PROGRAMS:
        return None
    return make_command(code, "shell", 0)
