"""How the stand-in writes a response: whole bodies, SSE streams with their scripted faults (cuts, drops,
resets, stalls), vendor error bodies, and waiting that notices a client that left; each in one of the shapes
servers and proxies answer in (`SHAPES`)."""

from __future__ import annotations

import json
import select
import socket
import struct
import time
import uuid
import zlib
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tests.fake_api.contract import MESSAGES
from tests.fake_api.scripting import SHAPES, Recorded, Reply, _delta

if TYPE_CHECKING:
    from tests.fake_api.server import _Server


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


class _Writer(BaseHTTPRequestHandler):
    """The response-writing half of the request handler (`server._Handler` adds the routes)."""

    protocol_version = "HTTP/1.1"
    server: _Server
    rec: Recorded
    request_id: str

    def _stream(
        self,
        reply: Reply,
        status: int,
        model: str,
        pieces: list[tuple[str, str]],
        finish: str,
        usage: tuple[dict, dict] | None,
    ) -> None:
        release_gen = self.server.api._release_gen  # a release() from now on ends this stream's stall
        self._begin(status, reply.shape, length=None)
        self.send_header("Content-Type", reply.content_type or "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if not self._end_headers(reply.headers) or not self._pause(reply.ttft):
            return self._hang_up()
        if reply.raw_stream is not None:
            if self._chunk(reply.raw_stream, reply.cut) and not self._cut_short(reply, 0, True, release_gen):
                self._end_body()
            return
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def event(delta: dict, finish_reason: str | None = None) -> bytes:
            return _sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})

        if not self._chunk(event({"role": "assistant", "content": ""}), reply.cut):
            return
        for i, (field, piece) in enumerate(pieces):
            if self._cut_short(reply, i, False, release_gen):
                return
            if i and not self._pause(reply.delay):
                return self._hang_up()
            if not self._chunk(event(_delta(field, piece)), reply.cut):
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
            self._end_body()

    def _begin(self, status: int, shape: str, length: int | None) -> None:
        """The status line and the headers that frame the body in `shape`; `length` for a whole body."""
        if shape not in SHAPES:
            raise ValueError(f"unknown response shape {shape!r}; one of {SHAPES}")
        self._shape = shape
        self._gzip = zlib.compressobj(wbits=31) if shape == "gzip" else None
        if shape == "http1.0":  # no framing at all: the body ends when the connection closes
            self.protocol_version = "HTTP/1.0"
        self.close_connection = shape in ("http1.0", "close")
        self.send_response(status)
        if shape == "close":
            self.send_header("Connection", "close")
        if shape == "gzip":
            self.send_header("Content-Encoding", "gzip")
        if shape != "http1.0" and length is not None:
            self.send_header("Content-Length", str(length))
        elif shape != "http1.0":
            self.send_header("Transfer-Encoding", "chunked")

    def _end_body(self) -> None:
        """End a streamed body as its shape does: the last (compressed) bytes, the last chunk, or closing."""
        if self._gzip is not None and not self._frame(self._gzip.flush(zlib.Z_FINISH)):
            return
        if self._shape == "http1.0":
            self._hang_up()
        else:
            self._write(b"0\r\n\r\n")

    def _frame(self, data: bytes) -> bool:
        """Write `data` as one piece of a streamed body: an HTTP chunk, or as it is when nothing frames it."""
        if not data:
            return True
        return self._write(data if self._shape == "http1.0" else b"%x\r\n%s\r\n" % (len(data), data))

    def _cut_short(self, reply: Reply, sent: int, last: bool, release_gen: int) -> bool:
        """Apply a drop/reset/stall due after `sent` content chunks; True when the stream must stop."""

        def due(after: int | None) -> bool:
            return after is not None and (after == sent or (last and after > sent))

        if due(reply.drop_after) or due(reply.reset_after):
            self._hang_up(reset=due(reply.reset_after) and not due(reply.drop_after))
            return True
        if due(reply.stall_after):
            torn = reply.stall_in_chunk and self._shape != "http1.0"  # a chunk begun cannot be followed by more
            if (torn and not self._write(b"10\r\n")) or not self._pause(None, release_gen) or torn:
                self._hang_up()
                return True
        return False

    def _error(self, status: int, message: str | None = None, details: list[str] | None = None) -> dict:
        """The vendor's error body."""
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = {
            "message": message or MESSAGES.get(status, phrase),
            "path": urlsplit(self.path).path,
            "requestId": self.request_id,
            "statusCode": status,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        return {**body, "details": details} if details else body

    def _send(
        self,
        status: int,
        payload: bytes | str | dict | list,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        shape: str = "keep-alive",
    ) -> None:
        """Send a complete response in `shape`: with Content-Length, or ended by closing the connection."""
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        data = payload.encode() if isinstance(payload, str) else payload
        if shape == "gzip":
            compress = zlib.compressobj(wbits=31)
            data = compress.compress(data) + compress.flush()
        self._begin(status, shape, length=len(data))
        self._gzip = None  # compressed already
        self.send_header("Content-Type", content_type or "application/json; charset=utf-8")
        if self._end_headers(headers) and self._write(data) and shape == "http1.0":
            self._hang_up()

    def _end_headers(self, extra: dict[str, str] | None) -> bool:
        """Add the per-response headers and send the header block."""
        self.send_header("x-inference-id", self.request_id)
        if "X-Client-Request-Id" in self.headers:
            self.send_header("X-Client-Request-Id", self.headers["X-Client-Request-Id"])
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
        except OSError:
            return self._gone()
        self.rec.headers_sent.set()
        return True

    def _chunk(self, data: bytes, cut: int | None) -> bool:
        """Write `data` as pieces of the body (of `cut` bytes each, if given), compressed if the shape says so."""
        if self._gzip is not None:
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)  # decodable at once
        step = cut or len(data) or 1
        return all(self._frame(data[i : i + step]) for i in range(0, len(data), step))

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
            # socket.socket's own recv: under TLS it peeks at the TCP stream, where the client's FIN shows
            return bool(readable) and socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True
