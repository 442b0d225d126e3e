"""Control characters made visible: the one implementation, at the bottom of the layers.

``tools`` depends on nothing else in stepweave, yet its ``Prompter`` shows untrusted text
(a gate's message rendered from tool output) in the terminal. So the escaping lives here
and ``orchestrator.terminal_text`` (the module the rest of the code uses, with the Rich
helpers) re-exports it: one list of dangerous characters, not two that could drift.
"""

from __future__ import annotations

import re

__all__ = ["escape_control"]

# C0 (minus \t and \n, which are handled by `multiline`), DEL, C1, and the Unicode
# format characters that reorder or hide text (bidi embeddings/overrides/isolates,
# zero-width joiners are harmless and kept).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_control(text: str, *, multiline: bool = True) -> str:
    """Replace control characters with visible escapes (``\\x1b``, ``\\x07``, ``\\u202e``).

    With ``multiline=False`` newlines and tabs are escaped too: use it where one line must
    stay one line (an approval prompt must not hide a second command below the first).
    """
    pattern = _CONTROL if multiline else _CONTROL_AND_LINES
    return pattern.sub(_visible, text)
