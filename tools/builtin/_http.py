"""``http``: one HTTP request with httpx, the body decoded as JSON or text.

httpx is imported by the first request, not with the tool: most commands never send one.
"""

from __future__ import annotations

import asyncio
import errno
import json as jsonlib
import time
import warnings
from typing import Annotated, Literal

from pydantic import BaseModel, Field, JsonValue

from ..base import tool
from ..context import ToolContext
from ..errors import ToolError
from ._common import tail
from ._http_guard import HttpAllowList, TargetRefused

__all__ = ["DEFAULT_MAX_BODY_BYTES", "HttpResponse", "http"]

#: Default cap on the (decompressed) response body.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

#: Client errors worth another attempt: the server asks to come back later.
_RETRYABLE_4XX = frozenset({408, 425, 429})

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
QueryValue = str | int | float | bool


class HttpResponse(BaseModel):
    """A received HTTP response."""

    status: int = Field(description="HTTP status code.")
    reason: str = Field(description="Reason phrase, e.g. 'Not Found'.")
    url: str = Field(description="Final URL (after redirects).")
    headers: dict[str, str] = Field(description="Response headers (lower-case names; repeats comma-joined).")
    content_type: str = Field(description="Media type of the body, without parameters.")
    body: JsonValue = Field(description="Parsed JSON when the content type is JSON, else the text.")
    elapsed_s: float = Field(description="Seconds from sending the request to reading the whole body.")


#: errno values that mean "too many open files" (per process, and system-wide).
_OUT_OF_FILES = frozenset({errno.EMFILE, errno.ENFILE})
_OUT_OF_FILES_HINT = (
    "too many open files in this process (EMFILE), a temporary condition; lower max_concurrency "
    "or raise the open-file limit (ulimit -n)"
)


def _out_of_files(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is the process running out of descriptors."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _OUT_OF_FILES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_json(media_type: str) -> bool:
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


async def _http(
    ctx: ToolContext,
    url: str,
    method: HttpMethod = "GET",
    headers: dict[str, str] | None = None,
    params: dict[str, QueryValue | list[QueryValue]] | None = None,
    json: JsonValue = None,
    body: str | None = None,
    timeout: Annotated[float, Field(gt=0)] = 30.0,  # noqa: ASYNC109 (an argument of the request)
    expect_status: int | list[int] | None = None,
    follow_redirects: bool = True,
    max_body_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_BODY_BYTES,
) -> HttpResponse:
    """Send an HTTP request and return the status, headers and body (JSON-decoded when JSON).

    Network errors, timeouts and 5xx responses fail with a retryable error. Other statuses
    are returned as they are, unless `expect_status` is given: then any other status fails,
    without retry (except 408/425/429, which ask to come back later).

    Only public addresses are reached: a host that is, or resolves to, a loopback, private,
    link-local, multicast or otherwise non-public address is refused (every redirect is
    checked too), unless the operator lists it in $STEPWEAVE_HTTP_ALLOW (host names like
    localhost or *.corp.example, addresses or networks like 127.0.0.1 or 10.0.0.0/8,
    separated by commas). The request goes to the address that was checked. Proxy
    settings from the environment are not used.

    Args:
        url: Absolute http:// or https:// URL.
        method: HTTP method, upper case.
        headers: Request headers, name to value.
        params: Query parameters added to the URL; a list value repeats the parameter.
        json: Value sent as a JSON body (sets Content-Type: application/json). Null sends no body.
        body: Text sent as the body (UTF-8); exclusive with `json`.
        timeout: Seconds for the whole request, from connecting to reading the full body.
        expect_status: Status code(s) that count as success; any other fails the call.
        follow_redirects: Follow 3xx redirects.
        max_body_bytes: Largest response body accepted; a larger one fails the call.
    """
    # Imported on the first request: httpx costs a fifth of `stepweave validate`'s start-up.
    import httpx

    from ._http_transport import GuardedTransport

    if json is not None and body is not None:
        raise ToolError("pass either `json` or `body`, not both", retryable=False)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ToolError(f"invalid url {url!r}: {exc}", retryable=False) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError(f"url {url!r} must be an absolute http:// or https:// URL", retryable=False)
    expected = (
        None
        if expect_status is None
        else ({expect_status} if isinstance(expect_status, int) else set(expect_status))
    )

    try:
        allow = HttpAllowList.from_env()
    except ValueError as exc:
        raise ToolError(str(exc), retryable=False) from None

    where = f"{method} {url}"
    started = time.monotonic()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=timeout, follow_redirects=follow_redirects, transport=GuardedTransport(allow)
            ) as client,
        ):
            request = client.build_request(
                method,
                url,
                headers=headers,
                params=params,
                json=json,
                content=body.encode("utf-8") if body is not None else None,
            )
            response = await client.send(request, stream=True)
            try:
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_body_bytes:
                        raise ToolError(
                            f"{where}: response body exceeds max_body_bytes={max_body_bytes}",
                            retryable=False,
                        )
            finally:
                await response.aclose()
    except TargetRefused as exc:
        raise ToolError(f"{where}: {exc}", retryable=False) from None
    except TimeoutError:
        raise ToolError(f"{where}: timed out after {timeout:g}s") from None
    except httpx.TimeoutException as exc:
        raise ToolError(f"{where}: timed out after {timeout:g}s ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        if _out_of_files(exc):
            raise ToolError(f"{where}: {_OUT_OF_FILES_HINT}") from None
        raise ToolError(f"{where}: {type(exc).__name__}: {exc or 'network error'}") from None
    except OSError as exc:  # loading the CA certificates, before any connection
        if _out_of_files(exc):
            raise ToolError(f"{where}: {_OUT_OF_FILES_HINT}") from None
        raise
    except httpx.HTTPError as exc:  # e.g. too many redirects, a malformed header value
        raise ToolError(f"{where}: {type(exc).__name__}: {exc}", retryable=False) from None
    elapsed = time.monotonic() - started

    status = response.status_code
    text = bytes(data).decode(response.encoding or "utf-8", errors="replace")
    ctx.logger.debug("http: %s -> %d in %.3fs", where, status, elapsed)
    if expected is None or status not in expected:
        if status >= 500:
            raise ToolError(f"{where}: server error {status} {response.reason_phrase}: {tail(text, 500)}")
        if expected is not None:
            wanted = ", ".join(str(s) for s in sorted(expected))
            raise ToolError(
                f"{where}: got status {status} {response.reason_phrase}, expected {wanted}: "
                f"{tail(text, 500)}",
                retryable=status in _RETRYABLE_4XX,
            )

    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    decoded: JsonValue = text
    if _is_json(media_type) and text.strip():
        try:
            decoded = jsonlib.loads(text)
        except ValueError as exc:
            raise ToolError(
                f"{where}: Content-Type is {media_type} but the body is not valid JSON ({exc}): "
                f"{tail(text, 200)}",
                retryable=False,
            ) from None
    return HttpResponse(
        status=status,
        reason=response.reason_phrase,
        url=str(response.url),
        headers=dict(response.headers.items()),
        content_type=media_type,
        body=decoded,
        elapsed_s=elapsed,
    )


#: Methods that only read (RFC 9110 "safe" methods we support).
_SAFE_METHODS = frozenset({"GET", "HEAD"})

# The argument is called `json` like in httpx and requests; pydantic warns that the field
# shadows the deprecated ``BaseModel.json`` method of the generated arguments model, which
# is harmless here (the model is only used to validate).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)
    http = tool(name="http", read_only=lambda args: str(args.get("method", "GET")).upper() in _SAFE_METHODS)(
        _http
    )
