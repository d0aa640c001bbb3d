"""sse: bytes to server-sent events, following the WHATWG algorithm; nothing here knows the chat API.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Lines are split on bytes (CR, LF or CRLF, even when a CRLF straddles two reads) and decoded as UTF-8 only
once complete. CR and LF never occur inside a multi-byte UTF-8 sequence, so a character split across two
network reads is safe without an incremental decoder, whatever charset the headers claim.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class LineSplitter:
    """Turns arbitrary byte chunks into complete lines (without their terminators)."""

    def __init__(self) -> None:
        self._pending = b""
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next one belongs to it

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")
        data = self._pending + chunk
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop()
        return lines

    def finish(self) -> list[bytes]:
        """The unterminated last line, if any."""
        rest, self._pending, self._skip_lf = self._pending, b"", False
        return [rest] if rest else []


class SSEDecoder:
    """Accumulates fields line by line and dispatches an event on each blank line."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment, used as a keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data and self._event is None:
            return None
        event = ServerSentEvent("\n".join(self._data), self._event, self._last_id, self._retry)
        self._data, self._event, self._retry = [], None, None
        return event

    def iter_bytes(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        """Events from a byte stream; a stream that ends without a final blank line still dispatches."""
        splitter = LineSplitter()
        for chunk in chunks:
            for line in splitter.feed(chunk):
                event = self.decode(line.decode("utf-8", errors="replace"))
                if event is not None:
                    yield event
        for line in splitter.finish() + [b""]:
            event = self.decode(line.decode("utf-8", errors="replace"))
            if event is not None:
                yield event
