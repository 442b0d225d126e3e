"""No cyclic garbage collection while the command line starts.

Starting a command imports typer, pydantic, Jinja2 and PyYAML and builds their classes and
validators: ~40,000 long-lived objects, none of them garbage. As they accumulate the
collector runs ~80 times over the growing heap and frees nothing: ~10 ms of the ~200 ms
that ``stepweave validate`` takes, a command editors and CI run on every save.

:func:`paused` (around the whole CLI, in ``main``) stops the collector; :func:`resume`
(called when a command's own code starts, see :func:`resuming_on_call`) moves every object
made so far to the permanent generation, where collections never look again
(``gc.freeze``, made for this), and starts the collector again. A long ``run`` or
``agent`` therefore collects its own garbage as usual, from its first line on.

Reference counting frees everything acyclic in between; the few cycles start-up makes
(a traceback caught during an import, say) are kept, as they would be by an import.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["paused", "resume", "resuming_on_call"]

_paused_by_us = False


@contextmanager
def paused() -> Iterator[None]:
    """Collection stopped until :func:`resume` or the end of the block (whichever is first).

    Does nothing when collection was already off (the caller's choice stands).
    """
    global _paused_by_us
    if not gc.isenabled():
        yield
        return
    gc.disable()
    _paused_by_us = True
    try:
        yield
    finally:
        resume()


def resume() -> None:
    """Freeze what start-up made and collect again; a no-op unless :func:`paused` paused it."""
    global _paused_by_us
    if _paused_by_us:
        _paused_by_us = False
        gc.freeze()
        gc.enable()


def resuming_on_call(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` that first calls :func:`resume`: a command's own code runs collected."""
    if getattr(callback, "__stepweave_resumes_gc__", False):
        return callback

    @functools.wraps(callback)
    def command(*args: Any, **kwargs: Any) -> Any:
        resume()
        return callback(*args, **kwargs)

    command.__stepweave_resumes_gc__ = True  # type: ignore[attr-defined]
    return command
