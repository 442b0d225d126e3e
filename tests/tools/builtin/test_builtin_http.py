"""The ``http`` tool against a real server on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import pytest

from tools import ToolArgumentError, ToolError
from tools.builtin import HttpResponse, http


async def test_get_json_with_params(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/json", "params": {"q": "x y", "n": [1, 2]}})
    assert isinstance(result, HttpResponse)
    assert result.status == 200
    assert result.content_type == "application/json"
    assert result.body == {"hello": "world", "query": {"q": ["x y"], "n": ["1", "2"]}}
    assert result.headers["content-type"].startswith("application/json")
    assert result.elapsed_s > 0


async def test_post_json_is_echoed(http_server: str) -> None:
    payload = {"name": "widget", "tags": ["a", "b"], "n": 3, "nested": {"ok": True}}
    result = await http.invoke(
        {"url": f"{http_server}/created", "method": "POST", "json": payload, "expect_status": 201}
    )
    assert result.status == 201
    assert result.body == {"method": "POST", "content_type": "application/json", "received": payload}


async def test_post_text_body_and_headers(http_server: str) -> None:
    result = await http.invoke(
        {
            "url": f"{http_server}/echo",
            "method": "PUT",
            "body": "raw text",
            "headers": {"Content-Type": "text/plain"},
        }
    )
    assert result.body["received"] == "raw text"  # type: ignore[index]
    assert result.body["content_type"] == "text/plain"  # type: ignore[index]


async def test_text_response(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/text"})
    assert result.body == "plain text é"
    assert result.content_type == "text/plain"
    assert result.headers["x-test"] == "yes"


async def test_json_suffix_media_type_is_parsed(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/problem"})
    assert result.body == {"type": "about:blank"}


async def test_head_has_empty_body(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/json", "method": "HEAD"})
    assert result.status == 200
    assert result.body == ""


async def test_404_is_returned_without_expect_status(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/status/404"})
    assert result.status == 404
    assert result.body == "status 404 body"


async def test_404_with_expect_status_is_permanent(http_server: str) -> None:
    with pytest.raises(ToolError, match=r"got status 404 Not Found, expected 200: status 404 body") as info:
        await http.invoke({"url": f"{http_server}/status/404", "expect_status": 200})
    assert info.value.retryable is False


async def test_429_with_expect_status_is_retryable(http_server: str) -> None:
    with pytest.raises(ToolError, match="got status 429") as info:
        await http.invoke({"url": f"{http_server}/status/429", "expect_status": [200, 204]})
    assert info.value.retryable is True


async def test_500_is_retryable(http_server: str) -> None:
    with pytest.raises(ToolError, match=r"server error 500 Internal Server Error: status 500 body") as info:
        await http.invoke({"url": f"{http_server}/status/500"})
    assert info.value.retryable is True


async def test_expected_5xx_is_returned(http_server: str) -> None:
    result = await http.invoke({"url": f"{http_server}/status/503", "expect_status": 503})
    assert result.status == 503


async def test_timeout_is_retryable(http_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0\.2s") as info:
        await http.invoke({"url": f"{http_server}/slow", "timeout": 0.2})
    assert info.value.retryable is True
    assert time.monotonic() - started < 3


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ToolError, match="ConnectError") as info:
        await http.invoke({"url": f"http://127.0.0.1:{port}/", "timeout": 2})
    assert info.value.retryable is True


async def test_invalid_json_body_is_reported(http_server: str) -> None:
    with pytest.raises(ToolError, match="not valid JSON") as info:
        await http.invoke({"url": f"{http_server}/badjson"})
    assert info.value.retryable is False


async def test_body_size_cap(http_server: str) -> None:
    with pytest.raises(ToolError, match="exceeds max_body_bytes=1000") as info:
        await http.invoke({"url": f"{http_server}/big", "max_body_bytes": 1000})
    assert info.value.retryable is False


@pytest.mark.parametrize("url", ["ftp://example.com/x", "/relative/path", "http://"])
async def test_bad_url_is_permanent(url: str) -> None:
    with pytest.raises(ToolError, match="url") as info:
        await http.invoke({"url": url})
    assert info.value.retryable is False


async def test_json_and_body_are_exclusive(http_server: str) -> None:
    with pytest.raises(ToolError, match="either `json` or `body`"):
        await http.invoke({"url": http_server, "method": "POST", "json": {"a": 1}, "body": "x"})


async def test_unknown_method_is_rejected_by_the_schema() -> None:
    with pytest.raises(ToolArgumentError, match="method"):
        await http.invoke({"url": "http://127.0.0.1/", "method": "FETCH"})
