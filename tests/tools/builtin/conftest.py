"""Fixtures for the built-in tool tests: a real HTTP server on 127.0.0.1, which the operator allows."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: Set at teardown so a deliberately slow handler returns.
    release: threading.Event
    #: Paths of the requests received, in order (to tell that a refused call never arrived).
    received: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (the timeout test) are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json; charset=utf-8")

    def do_GET(self) -> None:
        self.server.received.append(self.path)
        url = urlsplit(self.path)
        if url.path == "/redirect":  # /redirect?to=URL
            self._send(302, b"", "text/plain", {"Location": parse_qs(url.query)["to"][0]})
        elif url.path == "/host":
            self._json(200, {"host": self.headers.get("Host")})
        elif url.path == "/json":
            self._json(200, {"hello": "world", "query": parse_qs(url.query)})
        elif url.path == "/text":
            self._send(200, "plain text é".encode(), "text/plain; charset=utf-8", {"X-Test": "yes"})
        elif url.path == "/problem":
            self._send(200, b'{"type": "about:blank"}', "application/problem+json")
        elif url.path == "/badjson":
            self._send(200, b"{not json", "application/json")
        elif url.path == "/big":
            self._send(200, b"x" * 5000, "text/plain")
        elif url.path.startswith("/status/"):
            code = int(url.path.rsplit("/", 1)[1])
            self._send(code, f"status {code} body".encode(), "text/plain")
        elif url.path == "/slow":
            self.server.release.wait(10)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no such route", "text/plain")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        received: Any = json.loads(raw) if content_type.startswith("application/json") else raw.decode()
        self._json(
            201 if self.path == "/created" else 200,
            {"method": "POST", "content_type": content_type, "received": received},
        )

    do_PUT = do_POST


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the ``http`` tool reach 127.0.0.1, as an operator would with $STEPWEAVE_HTTP_ALLOW."""
    monkeypatch.setenv("STEPWEAVE_HTTP_ALLOW", "127.0.0.1")


@pytest.fixture
def http_server(allow_loopback: None, loopback_server: _Server) -> str:
    """Base URL of a threaded HTTP server on 127.0.0.1 (a free port, allowed), stopped afterwards."""
    host, port = loopback_server.server_address[:2]
    return f"http://{host!s}:{port}"


def _serve(server: _Server) -> Iterator[_Server]:
    server.release = threading.Event()
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def loopback_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """A threaded HTTP server on 127.0.0.1 (a free port), stopped afterwards; not allowed by itself."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    yield from _serve(_Server(("127.0.0.1", 0), _Handler))


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate for the name "localhost" only.

    The certificate is trusted through $SSL_CERT_FILE, which httpx reads.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl program to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _serve(server)
