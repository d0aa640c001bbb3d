"""What the stand-in is told to do (`Reply`, the chaos faults) and what it saw (`Recorded`)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any


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
    headers_after: float = 0.0  # seconds of silence before the status line, as a gateway waiting for its model
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
    shape: str = "keep-alive"  # how the body is framed and the connection used: one of SHAPES


# How servers and proxies answer: "keep-alive" (HTTP/1.1, chunked or Content-Length, the connection stays open),
# "close" (the same with `Connection: close`), "http1.0" (an HTTP/1.0 answer with no length: the body ends when
# the connection closes) and "gzip" (keep-alive, the body gzip-compressed although the client asked for identity).
SHAPES = ("keep-alive", "close", "http1.0", "gzip")


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
    client_disconnected: threading.Event = field(default_factory=threading.Event)  # left while being answered
    headers_sent: threading.Event = field(default_factory=threading.Event)  # the answer's status line and headers
    connection_closed: threading.Event = field(default_factory=threading.Event)  # its connection ended, either side


def _pieces(reply: Reply, max_tokens: Any) -> tuple[list[str], str]:
    """Text pieces to send and the finish_reason ("length" when max_tokens cut them)."""
    if reply.chunks is not None:
        pieces = list(reply.chunks)
    else:  # word-ish tokens keeping their leading whitespace: "Hello", " from", ...
        pieces = re.findall(r"\s*\S+", reply.text)
        tail = reply.text[len("".join(pieces)) :]
        if tail:
            pieces = pieces[:-1] + [pieces[-1] + tail] if pieces else [tail]
    if isinstance(max_tokens, (int, float)) and not isinstance(max_tokens, bool) and len(pieces) > max_tokens:
        return pieces[: int(max_tokens)], "length"
    return pieces, "stop"
