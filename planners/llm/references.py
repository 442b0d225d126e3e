"""Plan references (``$t1``, ``$t1.field``, ``${t1}``) translated into ``${{ steps.t1.output }}``.

Models write short references reliably (LLMCompiler's ``$1`` works for that reason); the
engine speaks one expression language (``orchestrator.expressions``, described under
"Expressions" in docs/workflows.md). A value that is exactly one reference becomes a native
reference (a list stays a list); references inside longer text become string interpolation.
Only ids of the plan's form (``t`` + digits) are references, so a shell argument like
``$HOME`` or awk's ``$1`` passes through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REFERENCE_PATTERN", "TASK_ID_PATTERN", "translate_references"]

#: Plan task ids: ``t1``, ``t2``...
TASK_ID_PATTERN = r"^t[0-9]+$"

_PATH = r"(?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*)"
_REFERENCE = re.compile(
    r"\$\{(?P<braced>t[0-9]+)" + _PATH.replace("path", "bpath") + r"\}"
    r"|\$(?P<bare>t[0-9]+)(?![A-Za-z0-9_])" + _PATH
)
#: A whole-value reference, as a JSON Schema pattern (for constrained decoding). Written
#: with character classes, never backslash escapes: llama.cpp's grammar compiler knows no
#: ``\$`` or ``\.`` (it fails to parse the grammar and its server crashed on it), and
#: every grammar compiler reads ``[$]`` alike. Index paths (``$t1[0]``) are left out of the
#: pattern for the same reason (``[`` cannot be written without an escape); the translator
#: still accepts them where the model writes free text.
REFERENCE_PATTERN = r"^[$][{]?t[0-9]+([.][A-Za-z_][A-Za-z0-9_]*)*[}]?$"


def _expression(match: re.Match[str]) -> str:
    task_id = match.group("braced") or match.group("bare")
    path = match.group("bpath") if match.group("braced") else match.group("path")
    return "${{ steps." + task_id + ".output" + (path or "") + " }}"


def _translate_string(value: str) -> str:
    if "$" not in value:
        return value
    whole = _REFERENCE.fullmatch(value.strip())
    if whole is not None:
        return _expression(whole)
    return _REFERENCE.sub(_expression, value)


def translate_references(value: Any) -> Any:
    """``value`` with every plan reference in its strings (keys excepted) rewritten."""
    if isinstance(value, str):
        return _translate_string(value)
    if isinstance(value, Mapping):
        return {key: translate_references(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [translate_references(item) for item in value]
    return value
