"""Showing untrusted text (tool outputs, errors, arguments, file content) in a terminal.

Two things in such text can lie to the person reading the terminal:

- Rich markup: ``[conceal]rm -rf /[/conceal]`` printed through a markup string hides the
  dangerous part (security review, finding 8).
- Terminal control sequences: ESC/CSI (``\\x1b[2J`` clears the screen, SGR 8 hides text),
  OSC (``\\x1b]0;title\\x07`` retitles the window), carriage returns that overwrite a
  line, and Unicode bidi overrides that reorder what is shown.

Every control character (C0 except newline and tab, DEL, C1, bidi controls) becomes a
visible escape such as ``\\x1b`` or ``\\u202e``, so the reader sees that it was there without
the terminal acting on it. ``Text`` never parses markup, so ``safe_text`` is what tables
and live views use; ``escape_for_terminal`` is for the places that build a markup string
(prompts) and interpolate data into it.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup
from rich.text import Text

__all__ = ["escape_control", "escape_for_terminal", "safe_text"]

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


def escape_for_terminal(text: str, *, multiline: bool = True) -> str:
    """``text`` made safe to interpolate into a Rich markup string: controls escaped, markup escaped."""
    return _escape_markup(escape_control(text, multiline=multiline))


def safe_text(text: str, style: str = "", *, multiline: bool = True) -> Text:
    """A ``rich.text.Text`` showing ``text`` literally: no markup, no terminal controls."""
    return Text(escape_control(text, multiline=multiline), style=style)
