"""Untrusted text reaches the terminal literally: no Rich markup, no control sequences."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from orchestrator.terminal_text import escape_control, escape_for_terminal, safe_text

HOSTILE = "[conceal]rm -rf /[/conceal] \x1b]0;owned\x07 \x1b[2J\r\u202eevil\x9b[8m"


def _render(*renderables: object) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system=None, width=300, highlight=False)
    for item in renderables:
        console.print(item)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b", "\\x1b"),
        ("\x07", "\\x07"),
        ("\r", "\\x0d"),
        ("\x00", "\\x00"),
        ("\x7f", "\\x7f"),
        ("\x9b", "\\x9b"),
        ("\u202e", "\\u202e"),
        ("a\tb\nc", "a\tb\nc"),
        ("plain [b]text[/b]", "plain [b]text[/b]"),
    ],
)
def test_escape_control_makes_every_control_visible(raw: str, shown: str) -> None:
    assert escape_control(raw) == shown


def test_single_line_mode_escapes_newlines_and_tabs() -> None:
    assert escape_control("echo ok\nrm -rf /\t", multiline=False) == "echo ok\\x0arm -rf /\\x09"


def test_safe_text_and_markup_escape_render_literally() -> None:
    out = _render(safe_text(HOSTILE), "approve " + escape_for_terminal(HOSTILE) + "?")
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\r" not in out
    assert out.count("[conceal]rm -rf /[/conceal]") == 2
    assert out.count("\\x1b]0;owned\\x07") == 2
