"""Reading shell text the way a POSIX shell (bash) would: words, operators, redirections.

Classification must see every simple command a text runs, and running must know whether a
command needs a shell at all. ``shlex`` splits words but treats a newline as a space (a
shell runs the next line as a new command), does not know ``>|``, ``<>``, ``&>``,
``<(…)``/``>(…)`` or heredocs, and loses which parts of a word were quoted. This small
lexer keeps all of that; it never evaluates anything. Expansions (``$X``, ``${X}``) stay in
a word's text as written; command and process substitutions are recorded with their body
so the classifier can refuse (or look into) them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Redirect",
    "ShellSyntaxError",
    "SimpleCommand",
    "Word",
    "needs_shell",
    "parse_shell",
    "shell_words",
]

#: Operators that end a simple command, longest first so ``||`` wins over ``|``.
_CONTROL = ("&&", "||", "|&", ";;&", ";;", ";&", "|", "&", ";", "(", ")", "\n")
#: Redirection operators, longest first.
_REDIRECTIONS = ("&>>", "&>", "<<<", "<<-", "<<", "<>", "<&", ">>", ">|", ">&", ">", "<")
_ASSIGNMENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS = _ASSIGNMENT_START | frozenset("0123456789")


class ShellSyntaxError(ValueError):
    """Unbalanced quotes or parentheses: the text cannot be read as a shell command."""


@dataclass
class Word:
    """One shell word: ``text`` is what the program receives (quotes removed, ``$X`` kept)."""

    text: str
    raw: str
    expands: bool = False  # a $ expansion outside single quotes
    substitution: bool = False  # $( … ), ` … `, $(( … )) or $'…' (what it becomes is unknown)


@dataclass
class Redirect:
    op: str
    fd: str  # "" when not given ("2" in 2>/dev/null)
    target: Word | None


@dataclass
class SimpleCommand:
    assignments: list[Word] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]


@dataclass
class ParsedShell:
    commands: list[SimpleCommand]
    substitutions: list[str]  # bodies of $( … ) and ` … `
    process_substitutions: list[str]  # bodies of <( … ) and >( … )
    operators: set[str]
    heredocs: int = 0


@dataclass
class _Token:
    kind: str  # word, op, redir, procsub
    value: str = ""
    word: Word | None = None
    fd: str = ""


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[_Token] = []
        self.substitutions: list[str] = []
        self.process_substitutions: list[str] = []
        self.heredoc_delimiters: list[tuple[str, bool]] = []
        self.awaiting_delimiter: bool | None = None  # strip tabs (<<-) when a delimiter word is due
        self.heredocs = 0
        self._reset_word()

    def _reset_word(self) -> None:
        self.chars: list[str] = []
        self.raw_start = -1
        self.expands = False
        self.substituted = False
        self.started = False

    def _finish_word(self) -> None:
        if not self.started:
            return
        word = Word("".join(self.chars), self.text[self.raw_start : self.pos], self.expands, self.substituted)
        self.tokens.append(_Token("word", word=word))
        if self.awaiting_delimiter is not None:
            self.heredoc_delimiters.append((word.text, self.awaiting_delimiter))
            self.awaiting_delimiter = None
        self._reset_word()

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self.raw_start = self.pos

    def _matching(self, start: int, open_: str, close: str) -> int:
        """Index just past the ``close`` that balances the ``open_`` before ``start``."""
        depth = 1
        index = start
        while index < len(self.text):
            char = self.text[index]
            if char == "\\":
                index += 2
                continue
            if char == "'":
                end = self.text.find("'", index + 1)
                if end < 0:
                    raise ShellSyntaxError("unbalanced single quote")
                index = end + 1
                continue
            if char == '"':
                index = self._double_end(index + 1)
                continue
            if char == open_:
                depth += 1
            elif char == close:
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        raise ShellSyntaxError(f"unbalanced {open_!r}")

    def _double_end(self, start: int) -> int:
        index = start
        while index < len(self.text):
            char = self.text[index]
            if char == "\\":
                index += 2
                continue
            if char == '"':
                return index + 1
            if self.text.startswith("$(", index):
                index = self._matching(index + 2, "(", ")")
                continue
            index += 1
        raise ShellSyntaxError("unbalanced double quote")

    def _dollar(self) -> None:
        """``$`` at ``pos``: an expansion (kept as text) or a substitution (recorded)."""
        text, pos = self.text, self.pos
        nxt = text[pos + 1 : pos + 2]
        if text.startswith("$((", pos):
            end = self._matching(pos + 3, "(", ")")
            if end < len(text) and text[end] == ")":
                end += 1  # the second ) of $(( … ))
            self.substituted = True
            self.substitutions.append(text[pos + 3 : end - 2])
        elif nxt == "(":
            end = self._matching(pos + 2, "(", ")")
            self.substituted = True
            self.substitutions.append(text[pos + 2 : end - 1])
        elif nxt == "{":
            end = self._matching(pos + 2, "{", "}")
            body = text[pos + 2 : end - 1]
            if "$(" in body or "`" in body:
                self.substituted = True
                self.substitutions.append(body)
        elif nxt == "'":
            end = pos + 2
            while end < len(text) and text[end] != "'":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise ShellSyntaxError("unbalanced $'…' quote")
            end += 1
            self.substituted = True  # ANSI-C escapes can spell anything, even "-"
        elif nxt and (nxt in _NAME_CHARS or nxt in "?#@*!$-"):
            end = pos + 2
            if nxt in _ASSIGNMENT_START:
                while end < len(text) and text[end] in _NAME_CHARS:
                    end += 1
        else:
            self.chars.append("$")
            self.pos += 1
            return
        self.expands = True
        self.chars.append(text[pos:end])
        self.pos = end

    def _backtick(self) -> None:
        end = self.pos + 1
        while end < len(self.text) and self.text[end] != "`":
            end += 2 if self.text[end] == "\\" else 1
        if end >= len(self.text):
            raise ShellSyntaxError("unbalanced backquote")
        self.substitutions.append(self.text[self.pos + 1 : end])
        self.substituted = self.expands = True
        self.chars.append(self.text[self.pos : end + 1])
        self.pos = end + 1

    def _double_quoted(self) -> None:
        self.pos += 1
        while True:
            if self.pos >= len(self.text):
                raise ShellSyntaxError("unbalanced double quote")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\" and self.text[self.pos + 1 : self.pos + 2] in ('"', "\\", "$", "`", "\n"):
                if self.text[self.pos + 1] != "\n":
                    self.chars.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._backtick()
            else:
                self.chars.append(char)
                self.pos += 1

    def _heredoc_bodies(self) -> None:
        """After a newline: skip the lines of pending heredocs (data, not commands)."""
        for delimiter, strip_tabs in self.heredoc_delimiters:
            self.heredocs += 1
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                self.pos = min(end + 1, len(self.text))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self.heredoc_delimiters = []

    def run(self) -> list[_Token]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                if text[self.pos + 1 : self.pos + 2] == "\n":
                    self.pos += 2  # line continuation
                    continue
                self._start()
                self.chars.append(text[self.pos + 1 : self.pos + 2])
                self.pos += 2
            elif char in " \t\r":
                self._finish_word()
                self.pos += 1
            elif char == "#" and not self.started:
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif char == "'":
                self._start()
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntaxError("unbalanced single quote")
                self.chars.append(text[self.pos + 1 : end])
                self.pos = end + 1
            elif char == '"':
                self._start()
                self._double_quoted()
            elif char == "$":
                self._start()
                self._dollar()
            elif char == "`":
                self._start()
                self._backtick()
            elif char in "<>" and text[self.pos + 1 : self.pos + 2] == "(":
                self._finish_word()
                end = self._matching(self.pos + 2, "(", ")")
                self.process_substitutions.append(text[self.pos + 2 : end - 1])
                self.tokens.append(_Token("procsub", text[self.pos : end]))
                self.pos = end
            elif char in "<>&" and any(text.startswith(op, self.pos) for op in _REDIRECTIONS):
                op = next(op for op in _REDIRECTIONS if text.startswith(op, self.pos))
                fd = ""
                if self.started and self.chars and "".join(self.chars).isdigit() and not self.expands:
                    fd = "".join(self.chars)  # the 2 of 2>/dev/null
                    self._reset_word()
                self._finish_word()
                self.tokens.append(_Token("redir", op, fd=fd))
                self.pos += len(op)
                if op in ("<<", "<<-"):
                    self.awaiting_delimiter = op == "<<-"
            elif char in "|&;()\n":
                self._finish_word()
                op = next(op for op in _CONTROL if text.startswith(op, self.pos))
                self.tokens.append(_Token("op", op))
                self.pos += len(op)
                if op == "\n" and self.heredoc_delimiters:
                    self._heredoc_bodies()
            else:
                self._start()
                self.chars.append(char)
                self.pos += 1
        self._finish_word()
        return self.tokens


def _is_assignment(word: Word) -> bool:
    name, equals, _ = word.raw.partition("=")
    name = name.removesuffix("+")
    return bool(equals) and bool(name) and name[0] in _ASSIGNMENT_START and set(name) <= _NAME_CHARS


def parse_shell(text: str) -> ParsedShell:
    """The simple commands of ``text`` (``ShellSyntaxError`` if quotes do not balance)."""
    lexer = _Lexer(text)
    tokens = lexer.run()
    commands: list[SimpleCommand] = [SimpleCommand()]
    operators: set[str] = set()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        current = commands[-1]
        if token.kind == "op":
            operators.add(token.value)
            commands.append(SimpleCommand())
        elif token.kind == "redir":
            target = tokens[index + 1].word if index + 1 < len(tokens) else None
            if target is None:
                raise ShellSyntaxError(f"{token.value} without a target")
            current.redirects.append(Redirect(token.value, token.fd, target))
            index += 1
        elif token.kind == "procsub":
            current.words.append(Word(token.value, token.value, True, True))
        else:
            assert token.word is not None
            if not current.words and _is_assignment(token.word):
                current.assignments.append(token.word)
            else:
                current.words.append(token.word)
        index += 1
    kept = [c for c in commands if c.words or c.assignments or c.redirects]
    return ParsedShell(kept, lexer.substitutions, lexer.process_substitutions, operators, lexer.heredocs)


def shell_words(text: str) -> list[Word]:
    """The words of a text that is one simple command (``ShellSyntaxError`` otherwise)."""
    parsed = parse_shell(text)
    if len(parsed.commands) != 1 or parsed.operators or parsed.commands[0].redirects:
        raise ShellSyntaxError("more than one simple command")
    command = parsed.commands[0]
    return command.assignments + command.words


def needs_shell(text: str) -> bool:
    """Whether running ``text`` needs ``sh -c`` (operators, redirections, substitutions, quotes gone wrong)."""
    try:
        parsed = parse_shell(text)
    except ShellSyntaxError:
        return True
    if parsed.operators or parsed.substitutions or parsed.process_substitutions or len(parsed.commands) != 1:
        return True
    command = parsed.commands[0]
    return bool(command.redirects or command.assignments)
