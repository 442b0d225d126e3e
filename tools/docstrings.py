"""Just enough docstring parsing to describe a tool and its parameters.

Google style (``Args:`` sections) and Sphinx style (``:param name:``) are recognised;
anything else leaves parameter descriptions empty, which is harmless.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns|Return|Raises|Yields|Example|Examples|Note|Notes):\s*$"
)
_GOOGLE_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Return (summary, {parameter: description}) from a function docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for raw in lines:
        line = raw.strip()
        sphinx = _SPHINX_PARAM.match(line)
        if sphinx:
            current, section = sphinx.group(1), "sphinx"
            params[current] = sphinx.group(2).strip()
            continue
        if line.startswith(":"):
            current, section = None, "sphinx-other"
            continue
        header = _SECTION.match(line)
        if header:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters", "Params"):
            indented = raw.startswith((" " * 8, "\t\t"))
            match = None if indented else _GOOGLE_PARAM.match(line)
            if match:
                current = match.group(1).lstrip("*")
                params[current] = match.group(2).strip()
            elif current and line:
                params[current] = f"{params[current]} {line}".strip()
        elif section == "sphinx" and current and line:
            params[current] = f"{params[current]} {line}".strip()
    text = "\n".join(summary).strip()
    # The summary is the first paragraph: later paragraphs are detail for humans.
    first_paragraph = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    return first_paragraph, params
