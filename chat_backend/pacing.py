"""pacing: fewer, fuller updates to the browser while replies stream, adapting to the server's load.

Each update costs the web server's one event-loop thread a millisecond or more of CPU whatever its size
(more for a long conversation, since Gradio re-processes the whole chat each time). So updates are drawn
from a server-wide budget: with few chats each gets up to 20 a second; with many, all slow down together
so that the sum stays bounded. The first text always goes out at once and the last is never held back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
MIN_INTERVAL = 0.05  # seconds: 20 updates a second reads as smooth
CHARS_PER_EXTRA_WEIGHT = 40_000  # a conversation this long costs about twice as much per update


def paced(deltas: Iterable[str], interval: Callable[[], float], *, flush: bool = True,
          clock: Callable[[], float] = time.monotonic) -> Iterator[str]:
    """The text so far, built from `deltas`: at once for the first piece, then once `interval()` has passed
    since the last yield, and finally (if `flush`) whatever was held back. Text is joined only when yielded.

    A caller that sends the complete text itself when the stream ends passes `flush=False` and so saves an
    update that would be replaced at once.
    """
    text, pending = "", []
    last_sent = -float("inf")
    for delta in deltas:
        pending.append(delta)
        now = clock()
        if now - last_sent >= interval():
            text += "".join(pending)
            pending.clear()
            last_sent = now
            yield text
    if pending and flush:
        yield text + "".join(pending)


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
