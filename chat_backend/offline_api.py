"""offline_api: canned replies in the API's shape, served in-process, so the app can be tried without a key or network.

`python app.py --offline` (or `OFFLINE=1`) points the client here. Every reply says it is canned. Only the
standard library: the tests' stand-in (tests/fake_api/) checks requests against the vendor's schema and
needs test-only packages; this one just answers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .catalogue import CHAT_MODEL_TYPE, KNOWN_MODELS

KEY = "offline"  # sent as the bearer token; this server ignores it
WORD_DELAY = 0.03  # seconds between streamed words, so streaming can be seen
REPLY = (
    "This is a canned reply: the app runs offline, so no model was called. You wrote {quote}. "
    "Set AIMLAPI_KEY and start the app without --offline to talk to a real model."
)


def canned_reply(body: dict[str, Any]) -> str:
    """The reply to a chat request: says it is canned and quotes the start of the last user message."""
    text = ""
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
            text = " ".join(str(part.get("text") or "") for part in parts if isinstance(part, dict))
    words = text.split()
    quote = "“" + " ".join(words[:12]) + (" …" if len(words) > 12 else "") + "”" if words else "nothing"
    return REPLY.format(quote=quote)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the app logs what matters."""

    def do_GET(self) -> None:
        if not self.path.split("?")[0].endswith("/models"):
            return self._json(404, {"error": {"message": "Not found"}})
        models = [
            {
                "id": model.id,
                "type": CHAT_MODEL_TYPE,
                "aliases": list(model.aliases),
                "info": {"name": model.name, "developer": model.developer, "contextLength": model.context_length},
            }
            for model in KNOWN_MODELS
        ]
        self._json(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self._json(400, {"error": {"message": "The body is not JSON."}})
        if not self.path.endswith("/chat/completions") or not isinstance(body, dict):
            return self._json(404, {"error": {"message": "Not found"}})
        words = canned_reply(body).split(" ")
        model = str(body.get("model") or "offline")
        usage = {"prompt_tokens": 1, "completion_tokens": len(words), "total_tokens": 1 + len(words)}
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": " ".join(words)}
            return self._json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # Stop: the app closed the connection
            self._stream(words, {**base, "object": "chat.completion.chunk"}, usage, body)

    def _stream(self, words: list[str], chunk: dict[str, Any], usage: dict[str, int], body: dict[str, Any]) -> None:
        for index, word in enumerate(words):
            time.sleep(WORD_DELAY if index else 0)
            delta = {"role": "assistant", "content": word} if not index else {"content": " " + word}
            self._event({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        self._event({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**chunk, "choices": [], "usage": usage})
        self._write(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _event(self, data: dict[str, Any]) -> None:
        self._write(b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n")

    def _write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start() -> str:
    """Serve canned replies on a free loopback port in a daemon thread; returns the base URL to use."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="offline-api", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"
