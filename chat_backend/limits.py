"""limits: how often one visitor may send, and how many replies may call the API at once.

A public Space spends its owner's credits, so each browser session and each client address gets a
sliding-window message rate, and the whole server a cap on simultaneous upstream calls. Every refusal is a
`ChatError` with a message that says how long to wait; nothing is silently dropped. A limit of 0 is off.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import Busy, Throttled

WINDOW_SECONDS = 60.0
MAX_TRACKED_KEYS = 100_000  # beyond this the idlest keys are forgotten, so memory stays bounded


class SlidingWindow:
    """At most `limit` events per key in any `window` seconds. Thread-safe."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_needed(self, key: str) -> float:
        """Record an event for `key` and return 0, or return the seconds to wait and record nothing."""
        if self.limit <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                self._events[key] = events
                return events[0] + self.window - now
            events.append(now)
            self._events[key] = events  # re-inserted last: dict order is least recently used first
            if len(self._events) > MAX_TRACKED_KEYS:
                del self._events[next(iter(self._events))]
            return 0.0


class Guard:
    """The limits one message must pass before it may call the API."""

    def __init__(self, per_session: int, per_address: int, max_upstream: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = SlidingWindow(per_session, clock=clock)
        self._addresses = SlidingWindow(per_address, clock=clock)
        self._max_upstream = max_upstream
        self._slots = threading.BoundedSemaphore(max_upstream) if max_upstream > 0 else None

    @contextmanager
    def admit(self, session: str, address: str) -> Iterator[None]:
        """Hold one upstream slot for the duration of a call; raise `Throttled` or `Busy` instead of waiting."""
        for window, key, who in ((self._sessions, session, "this chat"), (self._addresses, address, "your network address")):
            wait = window.wait_needed(key)
            if wait:
                raise Throttled(
                    f"Too many messages from {who}: at most {window.limit} a minute. "
                    f"Wait {math.ceil(wait)} s, then send again (your message is kept above; edit or retry it)."
                )
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise Busy(
                f"The server is already answering its maximum of {self._max_upstream} messages at once. "
                "Send again in a moment."
            )
        try:
            yield
        finally:
            if self._slots is not None:
                self._slots.release()
