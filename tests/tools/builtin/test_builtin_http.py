"""The ``http`` tool against a real server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from tools import ToolArgumentError, ToolError
from tools.builtin import HTTP_ALLOW_ENV, HttpResponse, http
from tools.builtin._http_guard import HttpAllowList, address_refusal


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


@pytest.mark.usefixtures("allow_loopback")
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


# --- only public addresses, unless the operator allows more (STEPWEAVE_HTTP_ALLOW) ---------


@pytest.fixture
def no_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HTTP_ALLOW_ENV, raising=False)


def port_of(server: Any) -> int:
    return int(server.server_address[1])


@pytest.mark.usefixtures("no_allow")
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",  # reaches the local host on Linux
        "127.1",
        "2130706433",  # decimal
        "0x7f000001",  # hexadecimal
        "017700000001",  # octal
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    ],
)
async def test_the_local_host_is_refused_in_every_spelling(loopback_server: Any, host: str) -> None:
    url = f"http://{host}:{port_of(loopback_server)}/json"
    with pytest.raises(
        ToolError, match=r"refused to connect to .*not a public one.*STEPWEAVE_HTTP_ALLOW"
    ) as info:
        await http.invoke({"url": url})
    assert info.value.retryable is False
    assert f"GET {url}" in str(info.value)
    assert loopback_server.received == []  # nothing was sent


@pytest.mark.usefixtures("no_allow")
async def test_a_dotted_quad_with_octal_parts_is_refused_too(loopback_server: Any) -> None:
    # httpx rejects the URL itself (glibc would read 0177 as 127).
    with pytest.raises(ToolError, match="Invalid IPv4 address") as info:
        await http.invoke({"url": f"http://0177.0.0.1:{port_of(loopback_server)}/json"})
    assert info.value.retryable is False
    assert loopback_server.received == []


@pytest.mark.usefixtures("no_allow")
@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "non-public"),
        ("192.0.0.8", "non-public"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "private"),
        ("[::]", "unspecified"),
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("[ff02::1]", "multicast"),
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64 of 169.254.169.254
        ("[2002:a00:1::1]", "private"),  # 6to4 of 10.0.0.1
    ],
)
async def test_non_public_addresses_are_refused(host: str, kind: str) -> None:
    with pytest.raises(ToolError, match=rf"a {kind} address") as info:
        await http.invoke({"url": f"http://{host}/", "timeout": 5})
    assert info.value.retryable is False


@pytest.mark.usefixtures("no_allow")
async def test_a_redirect_to_an_internal_address_is_refused(
    loopback_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The review's /redirect-internal: the first hop is allowed (by name), the second is not.
    monkeypatch.setenv(HTTP_ALLOW_ENV, "localhost")
    port = port_of(loopback_server)
    for target in (
        f"http://127.0.0.1:{port}/json",
        f"http://0.0.0.0:{port}/json",
        f"http://[::ffff:7f00:1]:{port}/json",
    ):
        url = f"http://localhost:{port}/redirect?to={target}"
        with pytest.raises(ToolError, match=r"refused to connect to .* for http://(127|0|\[::ffff)") as info:
            await http.invoke({"url": url})
        assert info.value.retryable is False
    assert [path.split("?")[0] for path in loopback_server.received] == ["/redirect"] * 3


async def test_the_checked_address_is_used_and_the_name_kept(
    loopback_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Allowed by address: "localhost" is resolved once, checked, and connected to as
    # 127.0.0.1; the server still sees the name in Host, and the result shows the URL asked for.
    monkeypatch.setenv(HTTP_ALLOW_ENV, "127.0.0.0/8")
    url = f"http://localhost:{port_of(loopback_server)}/host"
    result = await http.invoke({"url": url})
    assert result.body == {"host": f"localhost:{port_of(loopback_server)}"}
    assert result.url == url


async def test_environment_proxies_are_not_used(http_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would resolve and connect on its own, past the check; nothing listens on :1.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:1")
    assert (await http.invoke({"url": f"{http_server}/json"})).status == 200


@pytest.mark.parametrize("entry", ["127.0.0.1:8080", "http://127.0.0.1", "a b/c"])
async def test_a_bad_allow_entry_is_a_permanent_error(monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    monkeypatch.setenv(HTTP_ALLOW_ENV, entry)
    with pytest.raises(ToolError, match=r"STEPWEAVE_HTTP_ALLOW: .* is neither a host name") as info:
        await http.invoke({"url": "http://127.0.0.1/"})
    assert info.value.retryable is False


def test_allow_list_entries() -> None:
    allow = HttpAllowList.parse("localhost, *.corp.example 10.0.0.0/8,fd00::/8 192.168.1.5")
    assert allow.allows_host("LOCALHOST.") and allow.allows_host("db.corp.example")
    assert not allow.allows_host("corp.example") and not allow.allows_host("evilcorp.example")
    for text in ("10.9.8.7", "fd00::1", "192.168.1.5", "::ffff:10.0.0.1"):
        assert allow.allows_address(ipaddress.ip_address(text)), text
    for text in ("192.168.1.6", "127.0.0.1", "fe80::1"):
        assert not allow.allows_address(ipaddress.ip_address(text)), text
    assert HttpAllowList.parse(None) == HttpAllowList()


@pytest.mark.parametrize(
    "text", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(text: str) -> None:
    assert address_refusal(ipaddress.ip_address(text)) is None


async def test_tls_is_verified_against_the_name_not_the_checked_address(
    tls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The connection goes to 127.0.0.1 (the address checked), and the certificate, made
    # for "localhost" only, is still verified against the name in the URL.
    monkeypatch.setenv(HTTP_ALLOW_ENV, "127.0.0.1")
    port = port_of(tls_server)
    result = await http.invoke({"url": f"https://localhost:{port}/host"})
    assert result.body == {"host": f"localhost:{port}"}
    with pytest.raises(ToolError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await http.invoke({"url": f"https://127.0.0.1:{port}/host"})


def test_httpx_is_imported_by_the_first_request_not_with_the_tools() -> None:
    # `stepweave validate` loads every built-in tool; httpx was a fifth of its start-up.
    code = (
        "import sys, tools.builtin, planners.workflow; print(sorted(m for m in sys.modules if 'httpx' in m))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "[]"
