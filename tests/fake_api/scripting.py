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
    stall_in_chunk: bool = False  # the stall begins inside an HTTP chunk: its size line sent, not its data (no more)
    stream_error: dict | None = None  # after the content chunks send `data: {"error": ...}` and end
    usage: bool = True  # send the usage chunk when the request asked for stream_options.include_usage
    done: bool = True  # end with `data: [DONE]`; False: a plain end of stream
    abort: bool = False  # reset the connection before any response, as a refused or crashed upstream looks
    # the whole answer as raw bytes (status line, headers, framing by hand), each after its pause in seconds; then
    # the connection closes. For framings the shapes do not make: a length cut short, a chunk's end split off.
    raw_answer: list[tuple[float, bytes]] | None = None
    shape: str = "keep-alive"  # how the body is framed and the connection used: one of SHAPES
    thinking: str | None = None  # the model's reasoning, sent before `text` (word by word, counted against max_tokens)
    thinking_shape: str = "think"  # how: one of THINKING_SHAPES


# How servers and proxies answer: "keep-alive" (HTTP/1.1, chunked or Content-Length, the connection stays open),
# "close" (the same with `Connection: close`), "http1.0" (an HTTP/1.0 answer with no length: the body ends when
# the connection closes) and "gzip" (keep-alive, the body gzip-compressed although the client asked for identity).
SHAPES = ("keep-alive", "close", "http1.0", "gzip")
# Where a reply's thinking goes: inline in `content` before the answer (M2's `<think>`, M3's `<mm:think>`, or
# "prefilled": only the closing tag, as when a chat template opened the block), or a field of its own.
INLINE_THINKING = {
    "think": ("<think>", "</think>"),
    "mm:think": ("<mm:think>", "</mm:think>"),
    "prefilled": ("", "</think>"),
}
THINKING_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
THINKING_SHAPES = (*INLINE_THINKING, *THINKING_FIELDS)


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


def _words(text: str) -> list[str]:
    """Word-ish tokens keeping their leading whitespace: "Hello", " from", ..."""
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]
    if tail:
        pieces = pieces[:-1] + [pieces[-1] + tail] if pieces else [tail]
    return pieces


def _pieces(reply: Reply, max_tokens: Any) -> tuple[list[tuple[str, str]], str, int]:
    """(field, text) pieces to send, thinking first; the finish_reason ("length" when max_tokens cut them); and how
    many of the pieces are thinking. The field is "content", or the reasoning field `thinking_shape` names."""
    thinking: list[tuple[str, str]] = []
    if reply.thinking is not None:
        if reply.thinking_shape in THINKING_FIELDS:
            thinking = [(reply.thinking_shape, piece) for piece in _words(reply.thinking)]
        else:
            opener, closer = INLINE_THINKING[reply.thinking_shape]
            thinking = [("content", piece) for piece in _words(f"{opener}{reply.thinking}{closer}\n\n")]
    answer = reply.chunks if reply.chunks is not None else _words(reply.text)
    pieces = thinking + [("content", piece) for piece in answer]
    if isinstance(max_tokens, (int, float)) and not isinstance(max_tokens, bool) and len(pieces) > max_tokens:
        return pieces[: int(max_tokens)], "length", min(len(thinking), int(max_tokens))
    return pieces, "stop", len(thinking)


def _delta(field: str, text: str) -> dict[str, Any]:
    """One piece as a stream's `delta` (or a whole answer's `message`, for its thinking)."""
    return {field: [{"type": "reasoning.text", "text": text}]} if field == "reasoning_details" else {field: text}
