"""Template parameters in commands: ``$NAMESPACE``, ``${POD_NAME}`` and ``<value>``.

Each becomes a workflow input. Names are normalised to identifiers (``<Node-name>`` →
``Node_name``) because inputs are read as ``${{ inputs.<name> }}``. Variables every shell
already has (``$HOME``, ``$PATH`` …) and positional ones (``$1``) are not placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ENVIRONMENT_NAMES", "Placeholder", "find_placeholders", "input_name"]

#: Set by the shell or the user's session, not by the guide's reader.
ENVIRONMENT_NAMES = frozenset(
    [
        "HOME",
        "PATH",
        "USER",
        "PWD",
        "SHELL",
        "HOSTNAME",
        "TMPDIR",
        "LANG",
        "TERM",
        "KUBECONFIG",
        "EDITOR",
        "LOGNAME",
        "OLDPWD",
        "UID",
        # awk's own fields ($NF, $NR): runbooks write `awk '{print $NF}'`, never mean an input.
        "NF",
        "NR",
        "FNR",
    ]
)

PLACEHOLDER = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|<(?P<angle>[A-Za-z][A-Za-z0-9_\-]*)>"
)


@dataclass(frozen=True)
class Placeholder:
    name: str  # the input it becomes
    raw: str  # as written in the guide


def input_name(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", raw)


def find_placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in ``text``, first occurrence of each name, in order."""
    found: dict[str, Placeholder] = {}
    for match in PLACEHOLDER.finditer(text):
        raw = match.group("braced") or match.group("bare") or match.group("angle")
        if raw in ENVIRONMENT_NAMES:
            continue
        name = input_name(raw)
        found.setdefault(name, Placeholder(name, match.group(0)))
    return list(found.values())
