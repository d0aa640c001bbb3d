"""A local stand-in for the AI/ML API (contract: shared/api/NOTES.md).

Serves POST /v1/chat/completions (JSON or SSE stream) and GET /v1/models on 127.0.0.1, validates each
chat body against the strict schemas in tests/schemas/, records every request, and plays scripted
`Reply` objects so tests can provoke slow, broken or failing responses.
Run `python -m tests.fake_api --help` for manual use and benchmarks.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
CHAT_PATH, MODELS_PATH = "/v1/chat/completions", "/v1/models"
CREDITS_PER_TOKEN, USD_PER_CREDIT = 2, 0.0000005  # illustrative pricing for the cost fields
MESSAGES = {  # documented error messages (NOTES.md table)
    400: "Body validation error!",
    401: "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys",
    403: "You've run out of credits. Please top up your balance or update your payment method to "
    "continue: https://aimlapi.com/app/billing/",
    429: "Too Many Requests", 500: "Internal server error", 502: "Bad Gateway",
    503: "Service unavailable", 504: "Generation timeout",
}
# id, aliases, name, contextLength from NOTES.md (aliases are made up; outputMax, set below, is illustrative)
CHAT_MODELS = [
    ("abab6.5s-chat", [], "abab6.5s", 245_000),
    ("MiniMax-Text-01", ["minimax/text-01"], "MiniMax-Text-01", 1_000_000),
    ("minimax/m1", [], "MiniMax M1", 1_000_000),
    ("minimax/m2", [], "MiniMax M2", 200_000),
    ("minimax/m2-her", [], "MiniMax M2 Her", 200_000),
    ("minimax/m2-1", [], "MiniMax M2.1", 204_800),
    ("minimax/m2-1-highspeed", [], "MiniMax M2.1 Highspeed", 204_800),
    ("minimax/m2-5-20260218", [], "MiniMax M2.5", 204_800),
    ("minimax/m2-5-highspeed-20260218", [], "MiniMax M2.5 Highspeed", 204_800),
    ("minimax/m2-7-20260402", [], "MiniMax M2.7", 204_800),
    ("minimax/m2-7-highspeed", [], "MiniMax M2.7 Highspeed", 204_800),
    ("minimax/minimax-m3", [], "MiniMax M3", 1_000_000),
]
OTHER_MODELS = [{"id": "flux/schnell", "aliases": [], "type": "openai/images",
                 "info": {"name": "FLUX.1 [schnell]", "developer": "Black Forest Labs"}, "tags": ["playground:image"]}]


@dataclass
class Reply:
    """What the stand-in does with one chat request."""
    text: str = "Hello from the stand-in."
    chunks: list[str] | None = None  # stream pieces; default: `text` split as "Hello", " from", ...
    status: int = 200  # non-2xx: send `body` or a vendor error JSON, never a stream (200 -> 201 for abab6.5s-chat)
    body: bytes | str | dict | None = None  # raw body override (dict -> JSON; str/bytes as-is), even on 2xx
    content_type: str | None = None  # Content-Type override, e.g. "text/html" for a proxy page
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers, e.g. Retry-After
    ttft: float = 0.0  # seconds of silence before the first body byte (streams: after the headers)
    delay: float = 0.0  # seconds between content chunks
    raw_stream: bytes | None = None  # send exactly these SSE bytes instead of generated chunks
    cut: int | None = None  # send the stream body as HTTP chunks of at most this many bytes
    drop_after: int | None = None  # after this many content chunks, close (FIN) without ending the body
    reset_after: int | None = None  # after this many content chunks, send a TCP RST
    stall_after: int | None = None  # after this many content chunks, go silent until release() or close()
    stream_error: dict | None = None  # after the content chunks send `data: {"error": ...}` and end
    usage: bool = True  # send the usage chunk when the request asked for stream_options.include_usage
    done: bool = True  # end with `data: [DONE]`; False: a plain end of stream
    abort: bool = False  # reset the connection before any response, as a refused or crashed upstream looks
    close_delimited: bool = False  # send `body` without Content-Length and end it by closing the connection


class Headers(dict):
    """Request headers; keys are stored lower-case and lookups ignore case."""
    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__((k.lower(), v) for k, v in items)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


# The faults a chaos-mode stand-in picks from, each made from the normal reply.
CHAOS: list[Callable[[Reply], Reply]] = [
    lambda r: replace(r, status=500),
    lambda r: replace(r, status=502, body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    lambda r: replace(r, status=503),
    lambda r: replace(r, status=504),
    lambda r: replace(r, status=429, headers={"Retry-After": "0"}),
    lambda r: replace(r, drop_after=2),
    lambda r: replace(r, reset_after=2),
    lambda r: replace(r, stall_after=2),
    lambda r: replace(r, stream_error={"message": "Model overloaded", "status": 503}),
    lambda r: replace(r, raw_stream=b'data: {"choices": [{"delta": {"content": "Hal'),
    lambda r: replace(r, abort=True),
]


@dataclass
class Recorded:
    """One request as the stand-in received it."""
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    schema_errors: list[str] = field(default_factory=list)
    client_disconnected: threading.Event = field(default_factory=threading.Event)


@functools.cache
def _validator(model: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"chat_request.{model}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _explain(err: jsonschema.ValidationError) -> list[str]:
    """Flatten an error; for anyOf/oneOf report the branch the instance was evidently meant for."""
    if not err.context:
        return [f"{'/'.join(map(str, err.absolute_path)) or '(body)'}: {err.message}"]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def off_target(errs: list[jsonschema.ValidationError]) -> bool:  # wrong type or wrong role/type tag
        return any((e.validator == "type" and not e.relative_path) or
                   (e.validator in ("enum", "const") and list(e.relative_path)[-1:] in (["role"], ["type"]))
                   for e in errs)
    candidates = [errs for errs in branches.values() if not off_target(errs)] or list(branches.values())
    return [line for sub in min(candidates, key=len) for line in _explain(sub)]


def _pieces(reply: Reply, max_tokens: Any) -> tuple[list[str], str]:
    """Text pieces to send and the finish_reason ("length" when max_tokens cut them)."""
    if reply.chunks is not None:
        pieces = list(reply.chunks)
    else:  # word-ish tokens keeping their leading whitespace: "Hello", " from", ...
        pieces = re.findall(r"\s*\S+", reply.text)
        tail = reply.text[len("".join(pieces)):]
        if tail:
            pieces = pieces[:-1] + [pieces[-1] + tail] if pieces else [tail]
    if isinstance(max_tokens, (int, float)) and not isinstance(max_tokens, bool) and len(pieces) > max_tokens:
        return pieces[:int(max_tokens)], "length"
    return pieces, "stop"


def _usage(body: dict, completion: int) -> tuple[dict, dict]:
    """Rough usage (whitespace-separated words) and the vendor's meta.usage cost block."""
    prompt = 0
    for message in body.get("messages", []):
        content = message.get("content")
        parts = [content] if isinstance(content, str) else [p.get("text") for p in content or [] if isinstance(p, dict)]
        prompt += sum(len(p.split()) for p in parts if isinstance(p, str))
    total = prompt + completion
    credits = total * CREDITS_PER_TOKEN
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    return usage, {"usage": {"credits_used": credits, "usd_spent": round(credits * USD_PER_CREDIT, 8)}}


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


class _Handler(BaseHTTPRequestHandler):
    """Handles one connection; a keep-alive connection serves many requests."""
    protocol_version = "HTTP/1.1"
    server: _Server
    rec: Recorded

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stay quiet

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        api, path = self.server.api, urlsplit(self.path).path
        self.request_id = uuid.uuid4().hex
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        is_chat = self.command == "POST" and path == CHAT_PATH
        body, errors = None, []
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            errors = [f"invalid JSON: {exc}"]
        if is_chat and not errors:
            errors = api._validate(body)
        self.rec = Recorded(self.command, self.path, Headers(self.headers.items()), body, errors if is_chat else [])
        api._record(self.rec)
        if is_chat:
            self._chat(body)
        elif self.command == "GET" and path == MODELS_PATH:
            self._models(urlsplit(self.path).query)
        else:
            self._send(404, self._error(404, f"Cannot {self.command} {path}"))

    def _chat(self, body: Any) -> None:
        api = self.server.api
        scheme, _, key = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return self._send(401, self._error(401))
        if self.rec.schema_errors:
            return self._send(400, self._error(400, details=self.rec.schema_errors))
        model = body["model"]
        canonical = api._canonical(model)
        refused = canonical is None or model in api.deprecated_models or canonical in api.deprecated_models
        if refused and api.refusal_status == 400:  # the other shape NOTES.md allows: an enum validation error
            return self._send(400, self._error(400, details=[f"model: Invalid enum value, received '{model}'"]))
        if model in api.deprecated_models or canonical in api.deprecated_models:
            return self._send(404, self._error(404, f"Model '{model}' is deprecated and can no longer be called."))
        if canonical is None:
            return self._send(404, self._error(404, f"Model '{model}' not found."))
        reply = api._next_reply(body)
        if reply.abort:
            return self._hang_up(reset=True)
        status = 201 if reply.status == 200 and canonical == "abab6.5s-chat" else reply.status
        if reply.body is not None or not 200 <= status < 300:
            if not self._pause(reply.ttft):
                return self._hang_up()
            payload = reply.body if reply.body is not None else self._error(status)
            return self._send(status, payload, reply.content_type, reply.headers, reply.close_delimited)
        pieces, finish = _pieces(reply, body.get("max_tokens"))
        usage, meta = _usage(body, len(pieces))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and reply.usage
            return self._stream(reply, status, model, pieces, finish, (usage, meta) if include_usage else None)
        if not self._pause(reply.ttft):
            return self._hang_up()
        payload = {"id": uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()), "model": model,
                   "choices": [{"index": 0, "finish_reason": finish,
                                "message": {"role": "assistant", "content": "".join(pieces)}}],
                   "usage": usage, "meta": meta}
        cost = {"x-aimlapi-credits-used": str(meta["usage"]["credits_used"]),
                "x-aimlapi-usd-spent": f"{meta['usage']['usd_spent']:.8f}".rstrip("0").rstrip(".")}
        self._send(status, payload, reply.content_type, {**cost, **reply.headers})

    def _stream(self, reply: Reply, status: int, model: str, pieces: list[str], finish: str,
                usage: tuple[dict, dict] | None) -> None:
        release_gen = self.server.api._release_gen  # a release() from now on ends this stream's stall
        self.send_response(status)
        self.send_header("Content-Type", reply.content_type or "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        if not self._end_headers(reply.headers) or not self._pause(reply.ttft):
            return self._hang_up()
        if reply.raw_stream is not None:
            if self._chunk(reply.raw_stream, reply.cut) and not self._cut_short(reply, 0, True, release_gen):
                self._write(b"0\r\n\r\n")
            return
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        def event(delta: dict, finish_reason: str | None = None) -> bytes:
            return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})
        if not self._chunk(event({"role": "assistant", "content": ""}), reply.cut):
            return
        for i, piece in enumerate(pieces):
            if self._cut_short(reply, i, False, release_gen):
                return
            if i and not self._pause(reply.delay):
                return self._hang_up()
            if not self._chunk(event({"content": piece}), reply.cut):
                return
        if self._cut_short(reply, len(pieces), True, release_gen):
            return
        if reply.stream_error is not None:
            tail = [_sse({"error": reply.stream_error})]
        else:
            tail = [event({}, finish)]
            if usage is not None:
                tail.append(_sse({**base, "choices": [], "usage": usage[0], "meta": usage[1]}))
            if reply.done:
                tail.append(b"data: [DONE]\n\n")
        if all(self._chunk(data, reply.cut) for data in tail):
            self._write(b"0\r\n\r\n")

    def _cut_short(self, reply: Reply, sent: int, last: bool, release_gen: int) -> bool:
        """Apply a drop/reset/stall due after `sent` content chunks; True when the stream must stop."""
        def due(after: int | None) -> bool:
            return after is not None and (after == sent or (last and after > sent))
        if due(reply.drop_after) or due(reply.reset_after):
            self._hang_up(reset=due(reply.reset_after) and not due(reply.drop_after))
            return True
        if due(reply.stall_after) and not self._pause(None, release_gen):
            self._hang_up()
            return True
        return False

    def _models(self, query: str) -> None:
        api, reply, extra = self.server.api, self.server.api.models_reply, {}
        if reply is not None:
            if not self._pause(reply.ttft):
                return self._hang_up()
            if reply.body is not None or not 200 <= reply.status < 300:
                payload = reply.body if reply.body is not None else self._error(reply.status)
                return self._send(reply.status, payload, reply.content_type, reply.headers)
            extra = reply.headers
        params, data = parse_qs(query), api._catalogue()
        if "type" in params:
            data = [m for m in data if m["type"] in params["type"]]
        ids = {i for value in params.get("id", []) for i in value.split(",") if i}
        if ids:
            data = [m for m in data if m["id"] in ids or ids & set(m["aliases"])]
        payload = json.dumps({"object": "list", "data": data}).encode()
        etag = f'"{hashlib.sha256(payload).hexdigest()[:32]}"'
        wanted = [t.strip().removeprefix("W/") for t in self.headers.get("If-None-Match", "").split(",")]
        if etag in wanted or "*" in wanted:
            self.send_response(304)
            self.send_header("ETag", etag)
            self._end_headers(extra)
            return
        self._send(reply.status if reply else 200, payload, reply and reply.content_type, {"ETag": etag, **extra})

    def _error(self, status: int, message: str | None = None, details: list[str] | None = None) -> dict:
        """The vendor's error body."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = {"message": message or MESSAGES.get(status, phrase), "path": urlsplit(self.path).path,
                "requestId": self.request_id, "statusCode": status,
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        return {**body, "details": details} if details else body

    def _send(self, status: int, payload: bytes | str | dict | list, content_type: str | None = None,
              headers: dict[str, str] | None = None, close_delimited: bool = False) -> None:
        """Send a complete response: with Content-Length, or ended by closing the connection."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json; charset=utf-8")
        if close_delimited:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(data)))
        if self._end_headers(headers):
            self._write(data)

    def _end_headers(self, extra: dict[str, str] | None) -> bool:
        """Add the per-response headers and send the header block."""
        self.send_header("x-inference-id", self.request_id)
        if "X-Client-Request-Id" in self.headers:
            self.send_header("X-Client-Request-Id", self.headers["X-Client-Request-Id"])
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            return True
        except OSError:
            return self._gone()

    def _chunk(self, data: bytes, cut: int | None) -> bool:
        """Write `data` as HTTP chunks (of `cut` bytes each, if given)."""
        step = cut or len(data) or 1
        return all(self._write(b"%x\r\n%s\r\n" % (len(p), p)) for p in
                   (data[i:i + step] for i in range(0, len(data), step)))

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            return True
        except OSError:
            return self._gone()

    def _gone(self) -> bool:
        self.rec.client_disconnected.set()
        self.close_connection = True
        return False

    def _hang_up(self, reset: bool = False) -> None:
        """Close the connection abruptly: FIN without ending the response, or RST."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()  # drop the makefile reference so close() really closes
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _pause(self, seconds: float | None, release_gen: int = 0) -> bool:
        """Wait `seconds` (None: until release()); False if the client left or the server is closing."""
        if seconds is not None and seconds <= 0:
            return True
        api = self.server.api
        end = None if seconds is None else time.monotonic() + seconds
        while not api._closing.is_set():
            if self._client_gone():
                return self._gone()
            if end is None and api._release_gen != release_gen:
                return True
            left = 0.02 if end is None else min(0.02, end - time.monotonic())
            if left <= 0:
                return True
            api._closing.wait(left)
        return False

    def _client_gone(self) -> bool:
        """True when the client has closed its end (peeks without consuming)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default listen backlog of 5 drops simultaneous connects for seconds
    api: FakeAPI

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(), which can be slow
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.api._lock:
            self.api.connections += 1
            self.api._sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.api._lock:
            self.api._sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client going away is not an error
            super().handle_error(request, client_address)


class FakeAPI:
    """The stand-in server. Use `with FakeAPI() as api:` or start()/close()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, deprecated_models: Iterable[str] = frozenset()) -> None:
        self.host, self.port = host, port
        self.deprecated_models = frozenset(deprecated_models)  # 404 for these; may be reassigned
        self.refusal_status = 404  # 400: refuse deprecated and unknown models as a body validation error instead
        self.default = Reply()
        self.models_reply: Reply | None = None
        self.expect_schema_errors = False  # read by the conftest fixture
        self.requests: list[Recorded] = []
        self.connections = 0
        self.base_url = ""
        self._queue: deque[Reply] = deque()
        self._routes: dict[str, deque[Reply]] = {}
        self.chaos = 0.0  # share of chat requests that get a random fault from CHAOS
        self._rng = random.Random(0)
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._release_gen = 0
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeAPI:
        self._closing.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.api = self
        self.port = self._server.server_address[1]
        self.base_url = f"http://{self.host}:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-api-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, end stalled streams and shut every open connection."""
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._server = None

    def __enter__(self) -> FakeAPI:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat request that passes auth/validation/model checks takes the next one."""
        with self._lock:
            self._queue.extend(replies)

    def reset(self) -> None:
        """Forget requests and scripts and restore the defaults, for a server shared by several tests."""
        self.release()
        with self._lock:
            self._queue.clear()
            self._routes.clear()
            self.requests.clear()
        self.chaos = 0.0
        self.default, self.models_reply = Reply(), None
        self.deprecated_models, self.expect_schema_errors = frozenset(), False
        self.refusal_status = 404

    def release(self) -> None:
        """Unblock stalled streams (every stream started before this call)."""
        with self._lock:
            self._release_gen += 1

    def chat_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and urlsplit(r.path).path == CHAT_PATH]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        """Block until at least `n` requests (of any kind) were received; TimeoutError otherwise."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests within {timeout}s, got {len(self.requests)}")

    def wait_for_message(self, text: str, timeout: float = 10.0) -> None:
        """Block until a chat request whose last message contains `text` arrived; TimeoutError otherwise."""
        def arrived() -> bool:
            return any(text in str(r.body["messages"][-1].get("content")) for r in self.requests
                       if isinstance(r.body, dict) and r.body.get("messages"))
        with self._lock:
            if not self._lock.wait_for(arrived, timeout):
                raise TimeoutError(f"no chat request containing {text!r} within {timeout}s")

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
            self._lock.notify_all()

    def script_for(self, text: str, *replies: Reply) -> None:
        """Queue replies for requests whose last message contains `text`; they take precedence over `script`,
        so that simultaneous chats can be given different fates."""
        with self._lock:
            self._routes.setdefault(text, deque()).extend(replies)

    def _next_reply(self, body: dict) -> Reply:
        last = body["messages"][-1].get("content") if body.get("messages") else ""
        text = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last if isinstance(p, dict))
        with self._lock:
            for marker, replies in self._routes.items():
                if marker in text and replies:
                    return replies.popleft()
            if self._queue:
                return self._queue.popleft()
            if self.chaos and self._rng.random() < self.chaos:
                return self._rng.choice(CHAOS)(self.default)
            return self.default

    def _canonical(self, name: Any) -> str | None:
        """The catalogue id for a model id or alias (deprecated ones included), else None."""
        return next((m for m, aliases, *_ in CHAT_MODELS if name == m or name in aliases), None)

    def _validate(self, body: Any) -> list[str]:
        model = body.get("model") if isinstance(body, dict) else None
        schema = "MiniMax-Text-01" if self._canonical(model) == "MiniMax-Text-01" else "abab6.5s-chat"
        return [line for err in _validator(schema).iter_errors(body) for line in _explain(err)]

    def _catalogue(self) -> list[dict]:
        chat = [{"id": m, "aliases": list(aliases), "type": "openai/chat-completions",
                 "info": {"name": name, "developer": "MiniMax", "contextLength": ctx, "outputMax": 8192},
                 "tags": ["playground:chat"]}
                for m, aliases, name, ctx in CHAT_MODELS if m not in self.deprecated_models]
        return chat + OTHER_MODELS


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the AI/ML API stand-in in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--tokens", type=int, help="reply with this many tokens, one per chunk")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--deprecated", action="append", default=[], help="model id to answer with 404")
    parser.add_argument("--chaos", type=float, default=0.0, help="share of chat requests given a random fault")
    parser.add_argument("--seed", type=int, default=0, help="seed for --chaos")
    args = parser.parse_args(argv)
    api = FakeAPI(args.host, args.port, deprecated_models=args.deprecated)
    api.chaos, api._rng = args.chaos, random.Random(args.seed)
    delay = 1.0 / args.rate if args.rate > 0 else 0.0
    if args.tokens is not None:
        chunks = [f"{' ' if i else ''}tok{i}" for i in range(args.tokens)]
        api.default = Reply(text="".join(chunks), chunks=chunks, ttft=args.ttft, delay=delay)
    else:
        api.default = Reply(ttft=args.ttft, delay=delay)
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout`/`kill` exit as cleanly as Ctrl-C
    api.start()
    print(api.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.close()


if __name__ == "__main__":
    main()
