"""Small helpers shared by the built-in tools."""

from __future__ import annotations

__all__ = ["tail", "truthy_env"]

_TRUTHY = frozenset({"1", "true", "yes", "y", "on"})


def tail(text: str, limit: int = 2000) -> str:
    """The last ``limit`` characters of ``text`` (stripped), marked when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return "..." + text[-limit:]


def truthy_env(value: str | None) -> bool:
    """Whether an environment variable's value means "yes" (``1``, ``true``, ``yes``, ``on``)."""
    return value is not None and value.strip().lower() in _TRUTHY
