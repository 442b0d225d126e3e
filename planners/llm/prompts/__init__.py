"""Prompt templates, one file each, rendered with Jinja2 (our own templates, not user input).

Keeping prompts in files lets them be read and reviewed as text; the code only fills in
the blanks.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

__all__ = ["render"]

_DIR = Path(__file__).parent


@cache
def _environment() -> Environment:
    # Prompts are plain text, not HTML: no autoescaping.
    return Environment(
        loader=FileSystemLoader(_DIR),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


@cache
def _template(name: str) -> Template:
    return _environment().get_template(f"{name}.md")


def render(name: str, **context: Any) -> str:
    """Render ``prompts/<name>.md`` with ``context``; every variable it uses must be given."""
    return _template(name).render(**context).strip() + "\n"
