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

from typing import TYPE_CHECKING

# The escaping itself sits in `tools` (the bottom layer, whose Prompter needs it too).
from tools._terminal_text import escape_control

# Rich is imported where it is used: every command imports this module, and a `validate`
# that succeeds into a pipe prints no Rich markup or Text at all.
if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["escape_control", "escape_for_terminal", "safe_text"]


def escape_for_terminal(text: str, *, multiline: bool = True) -> str:
    """``text`` made safe to interpolate into a Rich markup string: controls escaped, markup escaped."""
    from rich.markup import escape

    return escape(escape_control(text, multiline=multiline))


def safe_text(text: str, style: str = "", *, multiline: bool = True) -> Text:
    """A ``rich.text.Text`` showing ``text`` literally: no markup, no terminal controls."""
    from rich.text import Text

    return Text(escape_control(text, multiline=multiline), style=style)
