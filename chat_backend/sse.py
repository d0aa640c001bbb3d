"""sse: bytes to server-sent events, following the WHATWG algorithm; nothing here knows the chat API.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
Lines are split on bytes (CR, LF or CRLF, even when a CRLF straddles two reads) and decoded as UTF-8 only
once complete. CR and LF never occur inside a multi-byte UTF-8 sequence, so a character split across two
network reads is safe without an incremental decoder, whatever charset the headers claim. A line may be at
most `MAX_LINE_BYTES` long, so a stream that never ends a line costs bounded memory, and the work stays linear.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_LINE_BYTES = 2 * 2**20  # far beyond any one chunk of a chat reply
BOM = "\ufeff"


class LineTooLong(ValueError):
    """A line grew past `MAX_LINE_BYTES`; `start` is its first KiB, for the log (longer than any excerpt cut
    from it, so that a secret redacted from the excerpt can't be split by this cut)."""

    def __init__(self, start: str) -> None:
        super().__init__(f"an event-stream line longer than {MAX_LINE_BYTES} bytes")
        self.start = start


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
    """Turns arbitrary byte chunks into complete lines (without their terminators).

    The unterminated rest is kept as a list of pieces and joined once, when its line ends, so a long line
    arriving in many small reads costs time in proportion to its length, not its square.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next one belongs to it
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")  # an LF alone was the CR's, and clears it
        if not chunk:
            return []
        if b"\n" not in chunk and b"\r" not in chunk:
            self._keep(chunk)
            return []
        data = b"".join(self._pending) + chunk
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending, self._pending_size = [], 0
        self._keep(lines.pop())
        for line in lines:
            self._check(line)
        return lines

    def finish(self) -> list[bytes]:
        """The unterminated last line, if any."""
        rest = b"".join(self._pending)
        self._pending, self._pending_size, self._skip_lf = [], 0, False
        return [rest] if rest else []

    def _keep(self, piece: bytes) -> None:
        if piece:
            self._pending.append(piece)
            self._pending_size += len(piece)
            if self._pending_size > self._max_line:
                self._check(b"".join(self._pending))

    def _check(self, line: bytes) -> None:
        if len(line) > self._max_line:
            raise LineTooLong(line[:1024].decode("utf-8", errors="replace"))


class SSEDecoder:
    """Accumulates fields line by line and dispatches an event on each blank line."""

    def __init__(self) -> None:
        self._first_line = True
        self._data: list[str] = []
        self._event: str | None = None
        self._retry: int | None = None
        self._last_id: str | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        if self._first_line:
            self._first_line = False
            line = line.removeprefix(BOM)  # the spec strips one leading U+FEFF from the stream
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
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        """The spec: with no data lines, reset the event type and dispatch nothing."""
        data, event, retry = self._data, self._event, self._retry
        self._data, self._event, self._retry = [], None, None
        return ServerSentEvent("\n".join(data), event, self._last_id, retry) if data else None

    def batches(self, chunks: Iterable[bytes]) -> Iterator[list[ServerSentEvent]]:
        """The events each chunk completes, as it arrives; then those the stream's end completes (a last event
        without its blank line still dispatches)."""
        splitter = LineSplitter()
        for chunk in chunks:
            yield self._decode_lines(splitter.feed(chunk))
        yield self._decode_lines(splitter.finish() + [b""])

    def _decode_lines(self, lines: list[bytes]) -> list[ServerSentEvent]:
        events = (self.decode(line.decode("utf-8", errors="replace")) for line in lines)
        return [event for event in events if event is not None]
