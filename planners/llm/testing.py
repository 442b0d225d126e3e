"""A small OpenAI-compatible HTTP server that replays scripted replies, for tests and benchmarks.

Real sockets on 127.0.0.1, real HTTP/1.1 (keep-alive, chunked SSE), so the real ``openai``
client is what talks to it and nothing about the client is mocked::

    async with OpenAITestServer() as server:
        server.queue(ScriptedReply.plan([{"id": "t1", "tool": "search", "args": {"q": "x"}}]))
        planner = LLMPlanner("test-model", base_url=server.base_url, api_key="sk-test")

Replies are consumed in order, one per chat completion request (``responder`` answers
when the queue is empty); every request is recorded with the times its chunks were sent.
Replies can misbehave the way real servers do: end a stream without ``finish_reason``
(llama.cpp when a second request interrupts the first), stall mid-stream (a hung server),
answer an error as an HTML page (a proxy), report no usage, stop at ``length``.
Switches mimic real servers: ``reject_json_schema`` answers HTTP 500 to a ``json_schema``
response format the way llama.cpp does, ``api_key`` makes a wrong key a 401. The server
runs in the event loop of whoever starts it; it is not for production use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any

__all__ = ["OpenAITestServer", "RecordedRequest", "ScriptedReply", "split_tokens"]

#: What llama.cpp's server answers (HTTP 500) to ``response_format: {"type": "json_schema"}``.
LLAMA_CPP_JSON_SCHEMA_ERROR = (
    'response_format type must be one of "text" or "json_object", but got: json_schema'
)


def split_tokens(text: str, size: int = 4) -> list[str]:
    """``text`` in pieces of about one token (``size`` characters; 4 is the usual estimate)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer: content (streamed in ``chunks``) or an HTTP error.

    Pacing: ``first_delay`` before the first chunk, then ``chunk_delay`` between chunks
    (or ``1 / tokens_per_second`` when set). ``prefill_tokens_per_second`` adds the time a
    real server takes to read the prompt before its first token (prompt tokens estimated
    as for ``usage``), so a long prompt costs what it costs on a real server. A
    non-streaming request waits as long as the stream would take, then answers whole. ``write_size`` cuts the HTTP body into writes of
    that many bytes (SSE lines and UTF-8 characters split anywhere); ``drop_after`` closes
    the connection after that many chunks, mid-answer; ``stall_after`` stops sending after
    that many chunks and keeps the connection open (a hung server).

    ``finish_reason`` ends the answer (``None``: the stream ends with ``[DONE]`` and no
    reason, as llama.cpp does to an interrupted request); ``usage=False`` reports no token
    counts; ``html`` sends an error as that HTML page instead of an OpenAI error body.
    """

    content: str = ""
    chunks: Sequence[str] | None = None
    status: int = 200
    error: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    first_delay: float = 0.0
    chunk_delay: float = 0.0
    tokens_per_second: float | None = None
    prefill_tokens_per_second: float | None = None
    write_size: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    finish_reason: str | None = "stop"
    usage: bool = True
    html: str | None = None
    #: Hold the stream before chunk ``pause_before`` until ``resume`` is set (no clock involved).
    pause_before: int | None = None
    resume: asyncio.Event | None = None

    @classmethod
    def json(cls, value: Any, **options: Any) -> ScriptedReply:
        """A reply whose content is ``value`` as JSON."""
        return cls(content=json.dumps(value), **options)

    @classmethod
    def plan(cls, tasks: Sequence[Mapping[str, Any]], **options: Any) -> ScriptedReply:
        """A plan reply: ``{"tasks": [...]}``; each task gets ``args: {}`` and ``deps: []`` if absent."""
        full = [{"args": {}, "deps": [], **task} for task in tasks]
        return cls.json({"tasks": full}, **options)

    @classmethod
    def finish(cls, answer: str, **options: Any) -> ScriptedReply:
        """A joiner reply that finishes with ``answer``."""
        return cls.json({"thought": "done", "action": "finish", "answer": answer, "reason": ""}, **options)

    @classmethod
    def replan(cls, reason: str, **options: Any) -> ScriptedReply:
        """A joiner reply that asks for a new plan."""
        return cls.json({"thought": "not yet", "action": "replan", "answer": "", "reason": reason}, **options)

    @classmethod
    def failure(cls, status: int, message: str, headers: Mapping[str, str] | None = None) -> ScriptedReply:
        """An HTTP error with an OpenAI-style error body."""
        return cls(status=status, error=message, headers=dict(headers or {}))

    @classmethod
    def html_error(cls, status: int, page: str) -> ScriptedReply:
        """An HTTP error whose body is an HTML page (a reverse proxy's, say)."""
        return cls(status=status, html=page)

    def pieces(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else split_tokens(self.content)

    @property
    def delay_per_chunk(self) -> float:
        if self.tokens_per_second:
            return 1.0 / self.tokens_per_second
        return self.chunk_delay


@dataclass
class RecordedRequest:
    """A request the server received, and when it sent each chunk of its answer (``time.time()``)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float
    status: int = 0
    chunk_times: list[float] = field(default_factory=list)
    finished_at: float | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def text(self) -> str:
        """All message contents, joined: handy for ``in`` assertions."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def response_format_type(self) -> str | None:
        fmt = self.body.get("response_format")
        return fmt.get("type") if isinstance(fmt, dict) else None


Responder = Callable[[RecordedRequest], ScriptedReply]


class OpenAITestServer:
    """``/v1/chat/completions`` (streaming and not) and ``/v1/models`` on a free loopback port.

    Args:
        model: the model name ``/v1/models`` lists and replies carry.
        api_key: when set, a request without ``Authorization: Bearer <api_key>`` gets a 401.
        reject_json_schema: answer 500 to ``json_schema`` response formats, as llama.cpp does.
        reject_response_format: answer 400 to any ``response_format`` (a plain server).
        responder: makes the reply when the queue is empty (default: a 400 saying so).
    """

    def __init__(
        self,
        *,
        model: str = "test-model",
        api_key: str | None = None,
        reject_json_schema: bool = False,
        reject_response_format: bool = False,
        responder: Responder | None = None,
    ) -> None:
        self.model = model
        self.api_key = api_key
        self.reject_json_schema = reject_json_schema
        self.reject_response_format = reject_response_format
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self._replies: deque[ScriptedReply] = deque()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # A unique path prefix: per-server memories keyed by URL never see a reused port.
        self._prefix = uuid.uuid4().hex[:8]
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> OpenAITestServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # Abort the connections rather than cancel their handlers: a handler then ends on
            # its next read or write, without a cancellation for asyncio to report.
            for writer in list(self._writers):
                writer.transport.abort()
            pending = list(self._connections)
            if pending:
                _, late = await asyncio.wait(pending, timeout=0.2)
                for task in late:  # a scripted delay longer than that: stop waiting for it
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> OpenAITestServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` / ``OPENAI_BASE_URL``."""
        if not self.port:
            raise RuntimeError("the server has not started: use `async with OpenAITestServer()`")
        return f"http://127.0.0.1:{self.port}/{self._prefix}/v1"

    # -- scripting ------------------------------------------------------------------------

    def queue(self, *replies: ScriptedReply) -> None:
        """Add replies, answered in order to the next chat completion requests."""
        self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Replies queued and not yet used."""
        return len(self._replies)

    @property
    def completions(self) -> list[RecordedRequest]:
        """The chat completion requests received, in order."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- HTTP -----------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # without it small SSE writes wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        self._writers.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except asyncio.CancelledError:
            # Only close() cancels a connection: end quietly, or asyncio's stream callback
            # reports the cancellation as an error.
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        record = RecordedRequest(method, target, headers, body, time.time())
        self.requests.append(record)
        keep_alive = await self._route(record, writer)
        return keep_alive and headers.get("connection", "").lower() != "close"

    async def _route(self, record: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        if self.api_key is not None and record.headers.get("authorization") != f"Bearer {self.api_key}":
            message = "Incorrect API key provided. You can find your API key in your account settings."
            await self._send_error(record, writer, 401, message, "invalid_request_error", {})
            return True
        if record.method == "GET" and record.path.endswith("/models"):
            listing = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "test"}]}
            await self._send_json(record, writer, 200, listing, {})
            return True
        if record.method != "POST" or not record.path.endswith("/chat/completions"):
            await self._send_error(record, writer, 404, f"no route for {record.method} {record.path}", "", {})
            return True
        fmt = record.response_format_type
        if fmt is not None and self.reject_response_format:
            message = f"response_format {fmt!r} is not supported by this server"
            await self._send_error(record, writer, 400, message, "invalid_request_error", {})
            return True
        if fmt == "json_schema" and self.reject_json_schema:
            await self._send_error(record, writer, 500, LLAMA_CPP_JSON_SCHEMA_ERROR, "server_error", {})
            return True
        reply = self._next_reply(record)
        if reply.status != 200 and reply.html is not None:
            await self._send_body(record, writer, reply.status, reply.html.encode(), "text/html", {})
            return True
        if reply.status != 200:
            await self._send_error(record, writer, reply.status, reply.error, "", reply.headers)
            return True
        if record.stream:
            return await self._send_stream(record, writer, reply)
        await self._send_completion(record, writer, reply)
        return True

    def _next_reply(self, record: RecordedRequest) -> ScriptedReply:
        if self._replies:
            return self._replies.popleft()
        if self.responder is not None:
            return self.responder(record)
        number = len(self.completions)
        return ScriptedReply.failure(400, f"test server: no scripted reply left for request {number}")

    # -- responses ------------------------------------------------------------------------

    @staticmethod
    def _prompt_tokens(record: RecordedRequest) -> int:
        return len(json.dumps(record.messages)) // 4

    def _first_delay(self, record: RecordedRequest, reply: ScriptedReply) -> float:
        """The wait before the first token: scripted, plus reading the prompt when paced."""
        if not reply.prefill_tokens_per_second:
            return reply.first_delay
        return reply.first_delay + self._prompt_tokens(record) / reply.prefill_tokens_per_second

    def _usage(self, record: RecordedRequest, completion_tokens: int) -> dict[str, int]:
        prompt = self._prompt_tokens(record)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        }

    async def _send_completion(
        self, record: RecordedRequest, writer: asyncio.StreamWriter, reply: ScriptedReply
    ) -> None:
        pieces = reply.pieces()
        await asyncio.sleep(
            self._first_delay(record, reply) + reply.delay_per_chunk * max(0, len(pieces) - 1)
        )
        body = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage:
            body["usage"] = self._usage(record, len(pieces))
        await self._send_json(record, writer, 200, body, {})
        record.chunk_times.append(time.time())

    async def _send_stream(
        self, record: RecordedRequest, writer: asyncio.StreamWriter, reply: ScriptedReply
    ) -> bool:
        record.status = 200
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        ident = f"chatcmpl-{len(self.requests)}"
        pieces = reply.pieces()
        loop = asyncio.get_running_loop()
        start = loop.time() + self._first_delay(record, reply)
        for index, piece in enumerate(pieces):
            # Sleep to a deadline, not for a delay: small sleeps each overshoot a little, and a
            # stream of hundreds of them would drift far behind the intended token rate.
            await asyncio.sleep(max(0.0, start + index * reply.delay_per_chunk - loop.time()))
            if reply.drop_after is not None and index >= reply.drop_after:
                writer.transport.abort()  # the connection breaks off mid-answer
                return False
            if reply.resume is not None and index == reply.pause_before:
                await reply.resume.wait()
            if reply.stall_after is not None and index >= reply.stall_after:
                await asyncio.Event().wait()  # hung: nothing more, until close() aborts us
            delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            await self._send_event(writer, reply, self._chunk(ident, [{"index": 0, "delta": delta}]))
            record.chunk_times.append(time.time())
        if reply.finish_reason is not None:
            stop = [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]
            await self._send_event(writer, reply, self._chunk(ident, stop))
        options = record.body.get("stream_options") or {}
        if options.get("include_usage") and reply.usage:
            usage_chunk = self._chunk(ident, [])
            usage_chunk["usage"] = self._usage(record, len(pieces))
            await self._send_event(writer, reply, usage_chunk)
        await self._write(writer, reply, self._frame(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        record.finished_at = time.time()
        return True

    def _chunk(self, ident: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"finish_reason": None, **c} for c in choices],
        }

    @staticmethod
    def _frame(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    async def _send_event(self, writer: asyncio.StreamWriter, reply: ScriptedReply, event: Any) -> None:
        data = f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
        await self._write(writer, reply, self._frame(data))

    @staticmethod
    async def _write(writer: asyncio.StreamWriter, reply: ScriptedReply, data: bytes) -> None:
        size = reply.write_size
        if not size:
            writer.write(data)
            await writer.drain()
            return
        for start in range(0, len(data), size):
            writer.write(data[start : start + size])
            await writer.drain()
            await asyncio.sleep(0)

    async def _send_error(
        self,
        record: RecordedRequest,
        writer: asyncio.StreamWriter,
        status: int,
        message: str,
        kind: str,
        headers: Mapping[str, str],
    ) -> None:
        body = {"error": {"message": message, "type": kind or "error", "param": None, "code": status}}
        await self._send_json(record, writer, status, body, headers)

    async def _send_json(
        self,
        record: RecordedRequest,
        writer: asyncio.StreamWriter,
        status: int,
        body: Any,
        headers: Mapping[str, str],
    ) -> None:
        await self._send_body(
            record, writer, status, json.dumps(body, ensure_ascii=False).encode(), "application/json", headers
        )

    async def _send_body(
        self,
        record: RecordedRequest,
        writer: asyncio.StreamWriter,
        status: int,
        data: bytes,
        content_type: str,
        headers: Mapping[str, str],
    ) -> None:
        record.status = status
        phrase = HTTPStatus(status).phrase
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\n{extra}\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        record.finished_at = time.time()
