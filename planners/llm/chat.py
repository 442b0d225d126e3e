"""One call to the model: request JSON the strongest way the server allows, retry what is
transient, stream the text back, and count the tokens and the time.

The openai client's own retries are switched off (``max_retries=0``) so that this is the
one place that decides: rate limits, 5xx and timeouts are retried with exponential
backoff and jitter (tenacity), honouring ``Retry-After``; anything else fails at once as
a ``PlannerError`` that carries the server's own message. A response format the server
rejects is not an error but a reason to try the next weaker one (see ``formats``).
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, AsyncOpenAI
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from orchestrator import PlannerError

from .formats import FormatMode, ServerMemory, is_format_rejection, response_format, weaker
from .usage import CallKind, CallUsage

__all__ = ["ChatCall", "ChatCaller", "JsonRequest"]

#: Statuses worth another attempt: timeout, conflict, rate limit, and server errors.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_HINTS = {
    401: "check OPENAI_API_KEY (or api_key=)",
    403: "the key may not have access to this model or endpoint",
    404: "check the model name (STEPWEAVE_MODEL or --model) and OPENAI_BASE_URL (it usually ends in /v1)",
}


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors a broken stream may raise: wrapped by newer openai clients, raw httpx by older ones."""
    errors: list[type[BaseException]] = [APIError, httpx.HTTPError]
    with contextlib.suppress(ImportError, AttributeError):
        errors.append(importlib.import_module("httpx2").HTTPError)
    return tuple(errors)


_STREAM_ERRORS = _transport_errors()


@dataclass(frozen=True, slots=True)
class JsonRequest:
    """What to ask: the messages, and the schema the JSON answer must follow."""

    kind: CallKind
    messages: Sequence[dict[str, str]]
    schema_name: str
    schema: dict[str, Any]


def server_message(exc: APIStatusError) -> str:
    """The server's own words, from the error body when it has them."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body:
        return body
    return exc.message


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, APIStatusError):
        return exc.status_code in _TRANSIENT_STATUSES or exc.status_code >= 500
    return isinstance(exc, APIConnectionError)  # includes APITimeoutError


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``), if any."""
    if not isinstance(exc, APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


class ChatCaller:
    """Makes model calls for one planner: its client, model, server memory and retry policy."""

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        memory: ServerMemory,
        forced_format: FormatMode | None = None,
        retries: int = 3,
        retry_wait: float = 0.5,
        max_retry_wait: float = 20.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.server = str(client.base_url).rstrip("/")
        self.memory = memory
        self.forced_format = forced_format
        self.retries = retries
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        self.temperature = temperature
        self.max_tokens = max_tokens
        #: Every call made through this caller, in order.
        self.calls: list[CallUsage] = []
        self._backoff = wait_exponential_jitter(multiplier=retry_wait, max=max_retry_wait, jitter=retry_wait)

    def call(
        self,
        request: JsonRequest,
        *,
        stream: bool,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> ChatCall:
        """A call to iterate for its text (``stream=False`` yields the whole answer at once)."""
        return ChatCall(self, request, stream=stream, on_retry=on_retry)

    def wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        asked = _retry_after(outcome.exception() if outcome is not None else None)
        if asked is not None:
            return min(asked, self.max_retry_wait)
        return float(self._backoff(state))

    def error(self, exc: BaseException, kind: CallKind) -> PlannerError:
        """A ``PlannerError`` that says what failed, the server's message, and what to check."""
        what = f"the {kind} call to {self.server} (model {self.model!r})"
        if isinstance(exc, APIStatusError):
            hint = _HINTS.get(exc.status_code)
            reason = exc.response.reason_phrase or ""
            message = f"{what} failed: HTTP {exc.status_code} {reason}".rstrip()
            message += f": {server_message(exc)}"
            if hint:
                message += f" ({hint})"
            return PlannerError(message)
        if isinstance(exc, APITimeoutError):
            return PlannerError(f"{what} timed out after {self.retries + 1} attempts")
        if isinstance(exc, APIConnectionError):
            cause = exc.__cause__ or exc
            return PlannerError(
                f"{what} could not connect after {self.retries + 1} attempts: {cause} "
                "(is OPENAI_BASE_URL right and the server running?)"
            )
        return PlannerError(f"{what} failed: {type(exc).__name__}: {exc}")


class ChatCall:
    """One model call. Iterate it for text as it arrives; then read ``usage`` and ``text``.

    A stream that breaks off midway is not raised: the text so far is kept and
    ``interrupted`` says why, so the caller can treat it as a truncated answer to repair
    (the tasks it already completed have started and stay started).
    """

    def __init__(
        self,
        caller: ChatCaller,
        request: JsonRequest,
        *,
        stream: bool,
        on_retry: Callable[[BaseException, float], None] | None,
    ) -> None:
        self._caller = caller
        self.request = request
        self.stream = stream
        self._on_retry = on_retry
        #: The answer's pieces: joined once when read, never re-copied per piece (linear).
        self._parts: list[str] = []
        self.interrupted: str | None = None
        self.usage: CallUsage | None = None
        self.mode = caller.forced_format or caller.memory.format_for(caller.server)

    @property
    def text(self) -> str:
        """The answer so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def __aiter__(self) -> AsyncGenerator[str, None]:
        return self._run()

    async def _run(self) -> AsyncGenerator[str, None]:
        caller = self._caller
        started = time.perf_counter()
        first: float | None = None
        retries = 0
        usage: Any = None
        try:
            response, retries = await self._open()
            if not self.stream:
                usage = response.usage
                content = response.choices[0].message.content if response.choices else None
                if content:
                    first = time.perf_counter() - started
                    self._parts = [content]
                    yield content
                return
            try:
                async for chunk in response:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta.content if choice.delta is not None else None
                        if delta:
                            if first is None:
                                first = time.perf_counter() - started
                            self._parts.append(delta)
                            yield delta
            except _STREAM_ERRORS as exc:
                self.interrupted = f"the response stream broke off: {type(exc).__name__}: {exc}"
            finally:
                await response.close()
        finally:
            self.usage = CallUsage(
                kind=self.request.kind,
                model=caller.model,
                prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
                seconds=time.perf_counter() - started,
                first_token_seconds=first,
                response_format=self.mode.value,
                retries=retries,
                reported=usage is not None,
            )
            caller.calls.append(self.usage)

    async def _open(self) -> tuple[Any, int]:
        """Send the request, falling back to weaker formats; return the response and retries."""
        caller = self._caller
        memory = caller.memory
        while True:
            kwargs = self._arguments()
            try:
                return await self._create(kwargs)
            except APIStatusError as exc:
                if "stream_options" in kwargs and "stream_options" in server_message(exc):
                    memory.remember_no_stream_options(caller.server)
                    continue
                fallback = weaker(self.mode)
                if caller.forced_format is None and fallback and is_format_rejection(exc, self.mode):
                    self.mode = fallback
                    memory.remember_format(caller.server, fallback)
                    continue
                raise caller.error(exc, self.request.kind) from exc
            except APIError as exc:
                raise caller.error(exc, self.request.kind) from exc

    def _arguments(self) -> dict[str, Any]:
        caller = self._caller
        request = self.request
        kwargs: dict[str, Any] = {"model": caller.model, "messages": list(request.messages)}
        fmt = response_format(self.mode, request.schema_name, request.schema)
        if fmt is not None:
            kwargs["response_format"] = fmt
        if caller.temperature is not None:
            kwargs["temperature"] = caller.temperature
        if caller.max_tokens is not None:
            kwargs["max_tokens"] = caller.max_tokens
        if self.stream:
            kwargs["stream"] = True
            if caller.memory.stream_options_ok(caller.server):
                kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    async def _create(self, kwargs: dict[str, Any]) -> tuple[Any, int]:
        caller = self._caller
        mode = self.mode

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, APIStatusError) and is_format_rejection(exc, mode):
                return False  # not transient: a weaker format is the cure
            if isinstance(exc, APIStatusError) and "stream_options" in server_message(exc):
                return False
            return _is_transient(exc)

        def before_sleep(state: RetryCallState) -> None:
            if self._on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                delay = state.next_action.sleep if state.next_action else 0.0
                if exc is not None:
                    self._on_retry(exc, delay)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(caller.retries + 1),
            wait=caller.wait,
            retry=retry_if_exception(retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                response = await caller.client.chat.completions.create(**kwargs)
                return response, attempt.retry_state.attempt_number - 1
        raise AssertionError("unreachable: tenacity returns or re-raises")
