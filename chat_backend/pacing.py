"""pacing: fewer, fuller updates while replies stream, adapting to the server's load and the browser's cost.

Each update costs the web server's one event-loop thread a millisecond or more of CPU whatever its size
(more for a long conversation, since Gradio re-processes the whole chat each time). So updates are drawn
from a server-wide budget: with few chats each gets up to 20 a second; with many, all slow down together
so that the sum stays bounded.

Each update also costs the *browser*: the chat re-renders the whole message being streamed (Markdown,
highlighting), so one update of a 10,000-character reply costs many times one of a short reply. A phone at
20 updates a second of a long reply spends all its time rendering and cannot answer a tap. So the interval
also grows with the length of the message (`browser_interval`): short replies stay at 20 a second, a long
one slows to a few a second, which still reads as live.

The first text always goes out at once, text that is due goes out even if the stream goes quiet (when a piece
is first held back, the awaiting side is told when it falls due, `held_until`, and takes it then with `flush`),
and the last is never held back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

MIN_INTERVAL = 0.05  # seconds: 20 updates a second reads as smooth
MAX_BROWSER_INTERVAL = 0.4  # seconds: even a very long reply updates a few times a second
CHARS_PER_EXTRA_INTERVAL = 16_000  # each this many characters of the message add a second between updates
CHARS_PER_EXTRA_WEIGHT = 40_000  # a conversation this long costs about twice as much per update
Clock = Callable[[], float]


def browser_interval(message_chars: int) -> float:
    """Seconds between updates that keep a phone's main thread mostly free while this message re-renders.

    A render costs roughly in proportion to the message's length, so the interval does too, which keeps
    the share of time spent rendering about constant as the reply grows (see docs/browser-cost.md).
    """
    return min(MAX_BROWSER_INTERVAL, message_chars / CHARS_PER_EXTRA_INTERVAL)


class Pacer:
    """Coalesces streamed text into updates; pure bookkeeping on an injectable clock, no waiting of its own.

    `add` takes a piece and returns the whole text when an update is due; `due` returns it when the stream
    has been quiet and held-back text has waited long enough. Thread-safe, since the reader thread adds
    pieces while the event loop asks what is due during a pause; either way an update counts against the
    interval.
    """

    def __init__(self, interval: Callable[[], float], clock: Clock = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.text = ""
        self.pending: list[str] = []
        self.pending_chars = 0
        self.last_sent = -float("inf")
        self.hold_began = False
        self._lock = threading.Lock()

    def add(self, delta: str) -> str | None:
        """Record a piece; the text so far if an update is due now. Otherwise `hold_began` says whether this
        piece is the first one held back since the last update."""
        with self._lock:
            first = not self.pending
            self.pending.append(delta)
            self.pending_chars += len(delta)
            if self.clock() >= self._due_at():
                return self._flush()
            self.hold_began = first
        return None

    def due(self) -> str | None:
        """The text so far if some of it is unsent and the interval since the last update has passed."""
        with self._lock:
            if self.pending and self.clock() >= self._due_at():
                return self._flush()
        return None

    def held_until(self) -> float | None:
        """When the text held back falls due (on `clock`), or None when nothing is held."""
        with self._lock:
            return self._due_at() if self.pending else None

    def next_update_at(self) -> float:
        """When the next update may go out (on `clock`): text that arrives sooner waits for it."""
        with self._lock:
            return self._due_at()

    def _due_at(self) -> float:
        return self.last_sent + max(self.interval(), browser_interval(len(self.text) + self.pending_chars))

    def flush(self) -> str | None:
        """The whole text, if anything was held back; marks it sent."""
        with self._lock:
            return self._flush()

    def _flush(self) -> str | None:
        if not self.pending:
            return None
        self.text += "".join(self.pending)
        self.pending.clear()
        self.pending_chars = 0
        self.last_sent = self.clock()
        return self.text

    def updates(self, deltas: Iterable[str], *, flush: bool = True) -> Iterator[str]:
        """The text so far, built from `deltas`: at once for the first piece, then once the interval (the
        larger of `interval()` and `browser_interval`) has passed since the last update, and finally (if
        `flush`) whatever was held back. Text is joined only when yielded.

        A caller that sends the complete text itself when the stream ends passes `flush=False` and so saves
        an update that would be replaced at once.
        """
        for delta in deltas:
            if (update := self.add(delta)) is not None:
                yield update
        if flush and (update := self.flush()) is not None:
            yield update


def weight_for(conversation_chars: int) -> float:
    """What one update of a conversation this long costs, in units of a short chat's update."""
    return 1.0 + conversation_chars / CHARS_PER_EXTRA_WEIGHT


class UpdateBudget:
    """A server-wide rate of update cost, shared by every reply streaming right now. Thread-safe."""

    def __init__(self, per_second: float, min_interval: float = MIN_INTERVAL) -> None:
        self.per_second = per_second
        self.min_interval = min_interval
        self._weight = 0.0
        self._lock = threading.Lock()

    def interval(self) -> float:
        """Seconds between one reply's updates: everyone's cost together stays within the budget."""
        return max(self.min_interval, self._weight / self.per_second)

    @contextmanager
    def share(self, weight: float) -> Iterator[Callable[[], float]]:
        """Count a reply in for as long as it streams; gives the interval to pace it by."""
        with self._lock:
            self._weight += weight
        try:
            yield self.interval
        finally:
            with self._lock:
                self._weight -= weight
