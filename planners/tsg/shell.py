"""Splitting shell text the way a POSIX shell would: words, operators, redirections.

Classification needs the simple commands inside a pipeline (``a | b && c``) and the files
output is redirected into; running needs to know whether a command needs a shell at all.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["is_operator", "is_redirect", "shell_segments", "shell_tokens"]

_OPERATORS = frozenset({"|", "||", "&&", ";", "&"})
_REDIRECTS = re.compile(r"^[0-9&]?>>?$|^>&$|^&>$")


def is_operator(token: str) -> bool:
    return token in _OPERATORS


def is_redirect(token: str) -> bool:
    return bool(_REDIRECTS.match(token))


def shell_tokens(text: str) -> list[str]:
    """Shell words and operators (``|``, ``&&``, ``>`` …), as a POSIX shell would split them."""
    # `<value>` placeholders would read as redirections: hide them from the tokenizer.
    hidden = re.sub(r"<([A-Za-z][A-Za-z0-9_\-]*)>", r"PH_\1", text)
    lexer = shlex.shlex(hidden, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: let the caller treat it as opaque
        return hidden.split()


def shell_segments(text: str) -> tuple[list[list[str]], list[str]]:
    """The simple commands of a shell text, and the files it redirects output into."""
    segments: list[list[str]] = [[]]
    redirects: list[str] = []
    tokens = shell_tokens(text)
    skip_next = False
    for index, token in enumerate(tokens):
        if skip_next:
            skip_next = False
            continue
        if is_operator(token) or token in ("(", ")"):
            segments.append([])
        elif token in ("<", "<<<"):
            skip_next = True  # reading a file or a string writes nothing
        elif is_redirect(token):
            if segments[-1] and segments[-1][-1].isdigit():
                segments[-1].pop()  # the "2" of 2>/dev/null
            if index + 1 < len(tokens) and token not in (">&",):
                redirects.append(tokens[index + 1])
            skip_next = True
        else:
            segments[-1].append(token)
    return [s for s in segments if s], redirects
