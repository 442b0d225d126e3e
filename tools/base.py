"""``@tool``: typed tools derived from plain Python function signatures.

The function stays plain Python (calling the ``Tool`` calls it); the decorator reads its
type hints and docstring once, builds a pydantic model for the arguments and a
``TypeAdapter`` for the return value, and keeps the tool's default policy (timeout,
retries, ...), which a task may override.

``Tool`` is generic over the function's parameters and return type, so type checkers see
``@tool def double(x: int) -> int`` as still callable as ``double(x=1)`` returning ``int``
(an ``async def`` tool returns its coroutine, as the function does). Bare ``Tool`` means
``Tool[..., Any]``: registries and executors take any tool.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, Generic, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

# TypeVar defaults (PEP 696) are in `typing` from 3.13; typing_extensions comes with pydantic.
from typing_extensions import ParamSpec, TypeVar

from .context import ToolContext
from .docstrings import parse_docstring
from .errors import ToolArgumentError, ToolDefinitionError, ToolResultError
from .threads import SyncRunner
from .threads import run_sync as run_on_tool_threads

__all__ = ["ReadOnly", "SyncRunner", "Tool", "tool"]


#: Whether a call has no side effects: a constant, or a predicate over the call's arguments
#: (``http`` is read-only for GET and HEAD only; ``sql`` unless ``write`` is set).
ReadOnly = bool | Callable[[Mapping[str, Any]], bool]

_EMPTY = inspect.Parameter.empty

#: The decorated function's parameters and return type; a bare ``Tool`` is ``Tool[..., Any]``.
P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)
#: The same, for the decorator (which binds them per call).
_P = ParamSpec("_P")
_R = TypeVar("_R")


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the argument path: ``url: Field required``."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


@dataclass(eq=False)
class Tool(Generic[P, R]):
    """A callable with a JSON Schema for its arguments and a validated return type."""

    func: Callable[P, R]
    name: str
    description: str
    args_model: type[BaseModel]
    return_type: Any
    takes_context: bool
    is_async: bool
    timeout: float | None = None
    retries: int | None = None
    idempotent: bool | None = None
    needs_approval: bool = False
    read_only: ReadOnly = False
    #: Seconds before the first retry (doubling); a task's own ``backoff`` wins.
    backoff: float | None = None
    _result_adapter: TypeAdapter[Any] | None = field(default=None, repr=False)

    @classmethod
    def from_function(
        cls,
        func: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        idempotent: bool | None = None,
        needs_approval: bool = False,
        read_only: ReadOnly = False,
        backoff: float | None = None,
    ) -> Tool[P, R]:
        """Build a tool from ``func``'s signature, type hints and docstring."""
        if isinstance(func, Tool):
            raise ToolDefinitionError(f"{func.name!r} is already a tool")
        if not callable(func):
            raise ToolDefinitionError(f"@tool needs a function, got {type(func).__name__}")
        tool_name = name or getattr(func, "__name__", None)
        if not tool_name or not tool_name.replace("_", "a").replace("-", "a").replace(".", "a").isalnum():
            raise ToolDefinitionError(f"tool name {tool_name!r} must be letters, digits, '_', '-' or '.'")
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise ToolDefinitionError(f"tool {tool_name!r}: generator functions are not supported")
        if timeout is not None and timeout <= 0:
            raise ToolDefinitionError(f"tool {tool_name!r}: timeout must be > 0, got {timeout}")
        if retries is not None and retries < 0:
            raise ToolDefinitionError(f"tool {tool_name!r}: retries must be >= 0, got {retries}")
        if backoff is not None and backoff < 0:
            raise ToolDefinitionError(f"tool {tool_name!r}: backoff must be >= 0 seconds, got {backoff}")
        summary, param_docs = parse_docstring(inspect.getdoc(func))
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception as exc:  # unresolvable forward references, typos in annotations
            raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve type hints: {exc}") from exc
        params = list(inspect.signature(func).parameters.values())
        takes_context = bool(params) and hints.get(params[0].name) is ToolContext
        if takes_context:
            params = params[1:]
        fields: dict[str, Any] = {}
        for param in params:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: *args/**kwargs cannot be described by a schema; "
                    f"declare each parameter of {param.name!r} explicitly"
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameter {param.name!r} is positional-only; "
                    "tools are called with keyword arguments"
                )
            if param.name not in hints:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameter {param.name!r} has no type hint "
                    "(the hint is the argument's schema)"
                )
            if hints[param.name] is ToolContext:
                raise ToolDefinitionError(f"tool {tool_name!r}: a ToolContext parameter must come first")
            default = ... if param.default is _EMPTY else param.default
            fields[param.name] = (
                hints[param.name],
                Field(default, description=param_docs.get(param.name) or None),
            )
        model = create_model(
            f"{tool_name.replace('.', '_').replace('-', '_')}_arguments",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        return_type = hints.get("return", Any)
        adapter = None if return_type is Any else TypeAdapter(return_type)
        return cls(
            func=func,
            name=tool_name,
            description=description if description is not None else summary,
            args_model=model,
            return_type=return_type,
            takes_context=takes_context,
            is_async=inspect.iscoroutinefunction(func),
            timeout=timeout,
            retries=retries,
            idempotent=idempotent,
            needs_approval=needs_approval,
            read_only=read_only,
            backoff=backoff,
            _result_adapter=adapter,
        )

    def is_read_only(self, args: Mapping[str, Any]) -> bool:
        """Whether calling the tool with ``args`` (rendered) has no side effects.

        Unknown means not read-only: a tool is trusted to be harmless only when its author
        said so. A predicate that fails on odd arguments counts as "not read-only".
        """
        read_only = self.read_only
        if isinstance(read_only, bool):
            return read_only
        try:
            return bool(read_only(args))
        except Exception:
            return False

    # -- plain-Python use ----------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the underlying function directly, with no validation (plain Python use)."""
        return self.func(*args, **kwargs)

    # -- schemas -------------------------------------------------------------------------

    @cached_property
    def parameters_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments (what an LLM or an editor sees)."""
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        schema["additionalProperties"] = False
        return schema

    @cached_property
    def return_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the result, or ``None`` when undeclared or not representable."""
        if self._result_adapter is None:
            return None
        try:
            return self._result_adapter.json_schema()
        except Exception:  # arbitrary Python classes have no JSON Schema; that's allowed
            return None

    @cached_property
    def output_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the result as expressions see it (plain JSON data), or ``None``.

        Serialization mode: the keys a model's fields become after ``plain_data``
        (aliases, computed fields), which is what ``steps.<id>.output.<key>`` reads.
        """
        if self._result_adapter is None:
            return None
        try:
            return self._result_adapter.json_schema(mode="serialization")
        except Exception:  # arbitrary Python classes have no JSON Schema; that's allowed
            return None

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI's function-calling format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters_schema,
            },
        }

    # -- validation ----------------------------------------------------------------------

    @cached_property
    def _field_adapters(self) -> dict[str, TypeAdapter[Any]]:
        adapters: dict[str, TypeAdapter[Any]] = {}
        for fname, info in self.args_model.model_fields.items():
            annotation: Any = info.annotation
            if info.metadata:
                annotation = Annotated[(annotation, *info.metadata)]
            adapters[fname] = TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        return adapters

    def check_arguments(self, args: Mapping[str, Any], dynamic: Collection[str] = ()) -> list[str]:
        """Problems with ``args`` that are knowable before the run.

        Values of arguments named in ``dynamic`` (they hold expressions) are unknown until
        run time, so only their presence counts.
        """
        problems: list[str] = []
        fields = self.args_model.model_fields
        for key in args:
            if key not in fields:
                hint = difflib.get_close_matches(key, list(fields), n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                expected = ", ".join(fields) or "none"
                problems.append(f"unknown argument {key!r}{suggestion}; expected: {expected}")
        for fname, info in fields.items():
            if fname not in args:
                if info.is_required():
                    problems.append(f"missing required argument {fname!r}")
            elif fname not in dynamic:
                try:
                    self._field_adapters[fname].validate_python(args[fname])
                except ValidationError as exc:
                    problems.append(f"argument {fname!r}: {format_validation_error(exc)}")
        return problems

    def validate_arguments(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and coerce ``args``; raise ``ToolArgumentError`` naming each bad one."""
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolArgumentError(
                f"invalid arguments for tool {self.name!r}: {format_validation_error(exc)}"
            ) from None
        return dict(model.__dict__)

    def validate_result(self, value: Any) -> Any:
        """Check the return value against the declared return type."""
        if self._result_adapter is None:
            return value
        try:
            return self._result_adapter.validate_python(value)
        except ValidationError as exc:
            raise ToolResultError(
                f"tool {self.name!r} returned {type(value).__name__}, which does not match its "
                f"declared return type {_type_name(self.return_type)}: {format_validation_error(exc)}"
            ) from None

    # -- execution -----------------------------------------------------------------------

    async def invoke(
        self,
        args: Mapping[str, Any],
        context: ToolContext | None = None,
        *,
        run_sync: SyncRunner = run_on_tool_threads,
    ) -> Any:
        """Validate ``args``, call the tool, validate and return its result.

        Sync functions run through ``run_sync`` (by default the run's tool threads, see
        ``tools.threads``) so a blocking tool never stalls the event loop.
        """
        kwargs = self.validate_arguments(args)
        if self.takes_context:
            result = await self._call(context or ToolContext(), kwargs, run_sync)
        else:
            result = await self._call(None, kwargs, run_sync)
        return self.validate_result(result)

    async def _call(self, context: ToolContext | None, kwargs: dict[str, Any], run_sync: SyncRunner) -> Any:
        # Called by keyword from validated arguments: the static signature no longer applies.
        func: Callable[..., Any] = self.func
        if self.is_async:
            if context is None:
                return await func(**kwargs)
            return await func(context, **kwargs)
        if context is None:
            return await run_sync(lambda: func(**kwargs))
        return await run_sync(lambda: func(context, **kwargs))


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


@overload
def tool(func: Callable[_P, _R], /) -> Tool[_P, _R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    idempotent: bool | None = None,
    needs_approval: bool = False,
    read_only: ReadOnly = False,
    backoff: float | None = None,
) -> Callable[[Callable[_P, _R]], Tool[_P, _R]]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    idempotent: bool | None = None,
    needs_approval: bool = False,
    read_only: ReadOnly = False,
    backoff: float | None = None,
) -> Tool[..., Any] | Callable[[Callable[_P, _R]], Tool[_P, _R]]:
    """Turn a function into a ``Tool``; use bare (``@tool``) or with options (``@tool(retries=2)``).

    The options are the tool's default policy; a task's own ``timeout``/``retries``/
    ``backoff`` override them. ``read_only`` declares the tool free of side effects (``True``, or a
    predicate over the arguments); planned runs (``stepweave ask``) ask before any other
    tool runs.
    """
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "timeout": timeout,
        "retries": retries,
        "idempotent": idempotent,
        "needs_approval": needs_approval,
        "read_only": read_only,
        "backoff": backoff,
    }
    if func is not None:
        return Tool.from_function(func, **options)

    def decorate(f: Callable[_P, _R]) -> Tool[_P, _R]:
        return Tool.from_function(f, **options)

    return decorate
