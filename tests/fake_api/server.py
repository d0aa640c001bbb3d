"""The stand-in server: routes (chat completions, models), the threading HTTP server, and `FakeAPI`, which
tests start, script and inspect."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import socketserver
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_api.contract import CHAT_MODELS, CHAT_PATH, MODELS_PATH, OTHER_MODELS, _explain, _usage, _validator
from tests.fake_api.scripting import CHAOS, Headers, Recorded, Reply, _delta, _pieces
from tests.fake_api.stream_writer import _Writer


class _Handler(_Writer):
    """Handles one connection; a keep-alive connection serves many requests."""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # stay quiet

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if rec := getattr(self, "rec", None):  # the connection's last request
                rec.connection_closed.set()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        api, path = self.server.api, urlsplit(self.path).path
        self.request_id = uuid.uuid4().hex
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if len(raw) < length:  # the client left before its body arrived whole (a Stop while sending): as a real
            self.close_connection = True  # server, nothing is recorded, answered or billed
            return
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
        if reply.raw_answer is not None:
            for pause, data in reply.raw_answer:
                if not self._pause(pause) or not self._write(data):
                    break
            return self._hang_up()
        if not self._pause(reply.headers_after):
            return self._hang_up()
        status = 201 if reply.status == 200 and canonical == "abab6.5s-chat" else reply.status
        if reply.body is not None or not 200 <= status < 300:
            if not self._pause(reply.ttft):
                return self._hang_up()
            payload = reply.body if reply.body is not None else self._error(status)
            return self._send(status, payload, reply.content_type, reply.headers, reply.shape)
        pieces, finish, thinking = _pieces(reply, body.get("max_tokens"))
        usage, meta = _usage(body, len(pieces), thinking)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and reply.usage
            return self._stream(reply, status, model, pieces, finish, (usage, meta) if include_usage else None)
        if not self._pause(reply.ttft):
            return self._hang_up()
        message = {"role": "assistant", "content": "".join(text for field, text in pieces if field == "content")}
        if reply.thinking is not None and (thought := "".join(text for field, text in pieces if field != "content")):
            message.update(_delta(reply.thinking_shape, thought))
        payload = {
            "id": uuid.uuid4().hex,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": usage,
            "meta": meta,
        }
        cost = {
            "x-aimlapi-credits-used": str(meta["usage"]["credits_used"]),
            "x-aimlapi-usd-spent": f"{meta['usage']['usd_spent']:.8f}".rstrip("0").rstrip("."),
        }
        self._send(status, payload, reply.content_type, {**cost, **reply.headers}, reply.shape)

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

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        deprecated_models: Iterable[str] = frozenset(),
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls  # tls: answer over https with this server context
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
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.base_url = f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-api-{self.port}", daemon=True
        )
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
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
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
            return any(
                text in str(r.body["messages"][-1].get("content"))
                for r in self.requests
                if isinstance(r.body, dict) and r.body.get("messages")
            )

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
        chat = [
            {
                "id": m,
                "aliases": list(aliases),
                "type": "openai/chat-completions",
                "info": {"name": name, "developer": "MiniMax", "contextLength": ctx, "outputMax": 8192},
                "tags": ["playground:chat"],
            }
            for m, aliases, name, ctx in CHAT_MODELS
            if m not in self.deprecated_models
        ]
        return chat + OTHER_MODELS
