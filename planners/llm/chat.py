"""One call to the model: request JSON the strongest way the server allows, retry what is
transient, stream the text back, and count the tokens and the time.

The openai client's own retries are switched off (``max_retries=0``) so that this is the
one place that decides: rate limits (429), 408, 409, 5xx other than 501/505 and
connection failures are retried with exponential backoff and jitter (tenacity),
honouring ``Retry-After``; anything else (another 4xx, a malformed URL) fails at once as
a ``PlannerError`` that carries the server's own message, on one line. A response format
the server rejects is not an error but a reason to try the next weaker one.

Calls to one server are serialized by default (``max_parallel_calls=1``): llama.cpp's
server cuts a running stream off when a second request arrives. A stream that ends
without ``finish_reason`` or breaks off is a transport failure (``ChatCall.transport``),
retried by the caller and never shown to the model as a problem with its answer. A call
that sends nothing for ``first_token_timeout`` seconds (or stalls for ``idle_timeout``
mid-stream) fails at once with a message naming the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib
import re
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from openai import APIConnectionError, APIError, APIStatusError, APITimeoutError, AsyncOpenAI
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from orchestrator import PlannerError
from orchestrator.telemetry.genai import traced_model_call

from .formats import FormatMode, ServerMemory, is_format_rejection, response_format, weaker
from .usage import CallKind, CallUsage

__all__ = ["DEFAULT_MAX_TOKENS", "ChatCall", "ChatCaller", "JsonRequest", "one_line"]

#: Completion tokens per call kind: a plan of a dozen tasks is ~600 tokens, a join's
#: answer a few hundred; the cap stops a model that rambles to the context limit.
DEFAULT_MAX_TOKENS: Mapping[CallKind, int] = {"plan": 1536, "repair": 1536, "replan": 1536, "join": 1024}
#: Statuses worth another attempt: timeout, conflict, rate limit, and server errors.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
#: Server errors that say "never": not implemented, HTTP version not supported.
_PERMANENT_SERVER_ERRORS = frozenset({501, 505})
_CONTEXT_WORDS = ("context length", "context window", "context_length", "maximum context", "n_ctx")
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
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


def one_line(text: str, limit: int = 300) -> str:
    """``text`` (perhaps an HTML error page) as one line of at most ``limit`` characters."""
    if "<" in text and ">" in text:
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else _TAGS.sub(" ", text)
        text = html.unescape(text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_message(exc: APIStatusError) -> str:
    """The server's own words, on one line."""
    return one_line(_server_message(exc))


def _server_message(exc: APIStatusError) -> str:
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
        status = exc.status_code
        return status in _TRANSIENT_STATUSES or (status >= 500 and status not in _PERMANENT_SERVER_ERRORS)
    if isinstance(exc, APIConnectionError):  # includes APITimeoutError
        return not _bad_url(exc)
    return False


def _bad_url(exc: BaseException) -> bool:
    """A URL no retry can fix (``htp://``, no host): httpx says so before connecting."""
    cause = exc.__cause__ or exc.__context__
    # By name: the openai client raises httpx's or httpx2's classes, depending on its version.
    return type(cause).__name__ in {"UnsupportedProtocol", "InvalidURL"}


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
        max_tokens: int | Mapping[CallKind, int] | None = None,
        max_parallel_calls: int = 1,
        first_token_timeout: float | None = 60.0,
        idle_timeout: float | None = 30.0,
    ) -> None:
        if max_parallel_calls < 1:
            raise ValueError(f"max_parallel_calls must be >= 1, got {max_parallel_calls}")
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
        self.max_parallel_calls = max_parallel_calls
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self._slots = asyncio.Semaphore(max_parallel_calls)
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

    @property
    def slots(self) -> asyncio.Semaphore:
        """Held by each call while it talks to the server: at most ``max_parallel_calls``."""
        return self._slots

    def max_tokens_for(self, kind: CallKind) -> int | None:
        """The completion-token cap of one call kind (``None``: the server's default)."""
        if isinstance(self.max_tokens, Mapping):
            return self.max_tokens.get(kind, DEFAULT_MAX_TOKENS.get(kind))
        return self.max_tokens

    def wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        asked = _retry_after(outcome.exception() if outcome is not None else None)
        if asked is not None:
            return min(asked, self.max_retry_wait)
        return float(self._backoff(state))

    def error(self, exc: BaseException, kind: CallKind, *, hint: str | None = None) -> PlannerError:
        """A ``PlannerError`` that says what failed, the server's message, and what to check."""
        what = f"the {kind} call to {self.server} (model {self.model!r})"
        if isinstance(exc, APIStatusError):
            hint = hint or _HINTS.get(exc.status_code)
            if any(word in server_message(exc).lower() for word in _CONTEXT_WORDS):
                hint = (
                    f"the prompt plus max_tokens ({self.max_tokens_for(kind)}) exceed the model's context "
                    "window: give the server a larger context (llama.cpp: --n_ctx) or lower max_tokens"
                )
            reason = exc.response.reason_phrase or ""
            message = f"{what} failed: HTTP {exc.status_code} {reason}".rstrip()
            message += f": {server_message(exc)}"
            if hint:
                message += f" ({hint})"
            return PlannerError(message)
        if isinstance(exc, APITimeoutError):
            return PlannerError(f"{what} timed out after {self.retries + 1} attempts")
        if isinstance(exc, APIConnectionError) and _bad_url(exc):
            return PlannerError(f"{what}: the URL is not usable ({exc.__cause__}); check OPENAI_BASE_URL")
        if isinstance(exc, APIConnectionError):
            cause = exc.__cause__ or exc
            return PlannerError(
                f"{what} could not connect after {self.retries + 1} attempts: {cause} "
                "(is OPENAI_BASE_URL right and the server running?)"
            )
        return PlannerError(f"{what} failed: {type(exc).__name__}: {exc}")


class ChatCall:
    """One model call. Iterate it for text as it arrives; then read ``usage`` and ``text``.

    A stream that breaks off midway, or ends without ``finish_reason``, is not raised: the
    text so far is kept and ``transport`` says what happened, so the caller can retry the
    call (the tasks it already started stay started) without blaming the model.
    ``finish_reason`` is the server's (``length``: the answer hit ``max_tokens``).
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
        self.transport: str | None = None
        self.finish_reason: str | None = None
        self.usage: CallUsage | None = None
        self.retries = 0
        self.max_tokens = caller.max_tokens_for(request.kind)
        self.mode = caller.forced_format or caller.memory.format_for(caller.server)

    @property
    def text(self) -> str:
        """The answer so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def __aiter__(self) -> AsyncGenerator[str, None]:
        caller = self._caller
        return traced_model_call(
            self._run(), self, model=caller.model, server=caller.server, purpose=self.request.kind
        )

    def _silent(self, waited: float, first: bool) -> PlannerError:
        caller = self._caller
        what = f"the {self.request.kind} call to {caller.server} (model {caller.model!r})"
        if first:
            return PlannerError(
                f"{what} sent nothing for {waited:g}s (first_token_timeout): the server may be hung "
                "or overloaded"
            )
        return PlannerError(f"{what} stalled mid-answer for {waited:g}s (idle_timeout)")

    async def _run(self) -> AsyncGenerator[str, None]:
        caller = self._caller
        async with caller.slots:
            started = time.perf_counter()
            first: float | None = None
            usage: Any = None
            first_limit = caller.first_token_timeout
            try:
                try:
                    async with asyncio.timeout(first_limit if self.stream else None):
                        response = await self._open()
                except TimeoutError:
                    raise self._silent(first_limit or 0.0, first=True) from None
                if not self.stream:
                    usage = response.usage
                    choice = response.choices[0] if response.choices else None
                    content = choice.message.content if choice is not None else None
                    self.finish_reason = choice.finish_reason if choice is not None else None
                    if content:
                        first = time.perf_counter() - started
                        self._parts = [content]
                        yield content
                    return
                chunks = aiter(response)
                try:
                    while True:
                        if first is None:
                            limit = (
                                None if first_limit is None else first_limit - (time.perf_counter() - started)
                            )
                        else:
                            limit = caller.idle_timeout
                        try:
                            async with asyncio.timeout(None if limit is None else max(0.0, limit)):
                                chunk = await anext(chunks)
                        except StopAsyncIteration:
                            break
                        except TimeoutError:
                            waited = first_limit if first is None else caller.idle_timeout
                            raise self._silent(waited or 0.0, first=first is None) from None
                        if chunk.usage is not None:
                            usage = chunk.usage
                        for choice in chunk.choices:
                            if choice.finish_reason:
                                self.finish_reason = choice.finish_reason
                            delta = choice.delta.content if choice.delta is not None else None
                            if delta:
                                if first is None:
                                    first = time.perf_counter() - started
                                self._parts.append(delta)
                                yield delta
                    if self.finish_reason is None:
                        self.transport = (
                            f"the stream from {caller.server} ended without a finish_reason (the server "
                            "cut it off; llama.cpp does when another request interrupts it)"
                        )
                except _STREAM_ERRORS as exc:
                    self.transport = f"the stream from {caller.server} broke off: {type(exc).__name__}: {exc}"
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
                    retries=self.retries,
                    reported=usage is not None,
                    max_tokens=self.max_tokens,
                    finish_reason=self.finish_reason,
                    transport_error=self.transport,
                )
                caller.calls.append(self.usage)

    async def _open(self) -> Any:
        """Send the request, falling back to weaker formats; return the response."""
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
                rejected = is_format_rejection(exc, self.mode)
                if caller.forced_format is None and fallback and rejected:
                    self.mode = fallback
                    memory.remember_format(caller.server, fallback)
                    continue
                hint = None
                if rejected and caller.forced_format is not None:
                    # The server's own message names a request field, not the option to change.
                    hint = (
                        f"the server does not take the forced response format {self.mode.value!r}; "
                        "response format 'auto' (the default) falls back to one it takes"
                    )
                raise caller.error(exc, self.request.kind, hint=hint) from exc
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
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.stream:
            kwargs["stream"] = True
            if caller.memory.stream_options_ok(caller.server):
                kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    async def _create(self, kwargs: dict[str, Any]) -> Any:
        caller = self._caller
        mode = self.mode

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, APIStatusError) and is_format_rejection(exc, mode):
                return False  # not transient: a weaker format is the cure
            if isinstance(exc, APIStatusError) and "stream_options" in server_message(exc):
                return False
            return _is_transient(exc)

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1  # counted here, so a call that fails in the end still says how often
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
                return await caller.client.chat.completions.create(**kwargs)
        raise AssertionError("unreachable: tenacity returns or re-raises")
