"""``python``: call a Python function the application registered beforehand.

No ``eval``/``exec`` and no imports chosen by the caller: ``target`` is looked up in an
allowlist filled by ``register_callable``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from pydantic import BaseModel, Field, JsonValue, TypeAdapter
from pydantic_core import PydanticSerializationError

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError
from ..threads import run_sync

__all__ = [
    "PythonResult",
    "python",
    "register_callable",
    "registered_callables",
    "unregister_callable",
]

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_registry: dict[str, Callable[..., Any]] = {}
_to_json: TypeAdapter[Any] = TypeAdapter(Any)


class PythonResult(BaseModel):
    """What a registered function returned."""

    target: str = Field(description="The registered name that was called.")
    value: JsonValue = Field(description="The return value, converted to JSON-compatible data.")
    duration_s: float = Field(description="Seconds the call took.")


def _import_target(path: str) -> Callable[..., Any]:
    module_name, sep, attr_path = path.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"register_callable: {path!r} is not of the form 'package.module:function'")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"register_callable: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise ValueError(f"register_callable: {path!r} is a {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def _add(name: str, func: Callable[..., Any], replace: bool) -> None:
    if not name:
        raise ValueError("register_callable: the name must not be empty")
    with _lock:
        existing = _registry.get(name)
        if existing is not None and existing is not func and not replace:
            raise ValueError(
                f"register_callable: a different callable is already registered as {name!r}; "
                "pass replace=True or choose another name"
            )
        _registry[name] = func


@overload
def register_callable(target: F, /, *, name: str | None = None, replace: bool = False) -> F: ...


@overload
def register_callable(
    target: str, /, *, name: str | None = None, replace: bool = False
) -> Callable[..., Any]: ...


@overload
def register_callable(target: None = None, /, *, name: str, replace: bool = False) -> Callable[[F], F]: ...


def register_callable(
    target: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    replace: bool = False,
) -> Any:
    """Allow the ``python`` tool to call a function.

    * ``register_callable(func)`` or ``@register_callable``: registered as ``"module:qualname"``.
    * ``register_callable(func, name="resize")`` or ``@register_callable(name="resize")``.
    * ``register_callable("package.module:function")``: imports it now, registered under that string.

    Returns the function (so it works as a decorator). Registering a different callable
    under a taken name raises ``ValueError`` unless ``replace=True``.
    """
    if target is None:
        if name is None:
            raise ValueError("register_callable() needs a function, an import path or name=")
        chosen = name

        def decorate(func: F) -> F:
            _add(chosen, func, replace)
            return func

        return decorate
    if isinstance(target, str):
        func = _import_target(target)
        _add(name or target, func, replace)
        return func
    if not callable(target):
        raise TypeError(f"register_callable: expected a callable or a string, got {type(target).__name__}")
    default = f"{getattr(target, '__module__', None) or '?'}:{getattr(target, '__qualname__', repr(target))}"
    _add(name or default, target, replace)
    return target


def unregister_callable(name: str) -> None:
    """Remove a registered name; ``KeyError`` if it is not registered."""
    with _lock:
        if name not in _registry:
            raise KeyError(f"no callable registered as {name!r}")
        del _registry[name]


def registered_callables() -> list[str]:
    """The names the ``python`` tool accepts as ``target``, sorted."""
    with _lock:
        return sorted(_registry)


def _describe(signature: inspect.Signature) -> str:
    """Parameter names as a caller of ``python`` sees them: ``a, b=1, **options``."""
    parts = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            parts.append(f"*{param.name}")
        elif param.kind is param.VAR_KEYWORD:
            parts.append(f"**{param.name}")
        elif param.default is param.empty:
            parts.append(param.name)
        else:
            parts.append(f"{param.name}={param.default!r}")
    return ", ".join(parts) or "no arguments"


def _lookup(target: str) -> Callable[..., Any]:
    with _lock:
        func = _registry.get(target)
        names = sorted(_registry)
    if func is not None:
        return func
    close = difflib.get_close_matches(target, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(names) if names else "none; register one with tools.builtin.register_callable"
    raise ToolError(f"python target {target!r} is not registered{hint}; registered: {known}", retryable=False)


@tool(name="python")
async def python(ctx: ToolContext, target: str, kwargs: dict[str, JsonValue] | None = None) -> PythonResult:
    """Call a registered Python function with keyword arguments and return its result.

    Only functions the application registered (tools.builtin.register_callable) can be
    called; nothing is imported or evaluated from the arguments.

    Args:
        target: Registered name of the function, e.g. "myapp.images:resize".
        kwargs: Keyword arguments for the function.
    """
    func = _lookup(target)
    arguments = kwargs or {}
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature; let the call check
        signature = None
    if signature is not None:
        try:
            signature.bind(**arguments)
        except TypeError as exc:
            raise ToolError(
                f"bad kwargs for python target {target!r}: {exc}; it takes: {_describe(signature)}",
                retryable=False,
            ) from None

    ctx.logger.debug("python: calling %s", target)
    started = time.monotonic()
    if inspect.iscoroutinefunction(func):
        value = await func(**arguments)
    else:
        value = await run_sync(functools.partial(func, **arguments))  # the run's tool threads
        if inspect.isawaitable(value):
            value = await value
    duration = time.monotonic() - started
    try:
        data = _to_json.dump_python(value, mode="json")
    except PydanticSerializationError as exc:
        raise ToolError(
            f"python target {target!r} returned a {type(value).__name__}, which cannot be converted "
            f"to JSON: {exc}",
            retryable=False,
        ) from None
    return PythonResult(target=target, value=data, duration_s=duration)
