"""metrics: what this replica is doing, in Prometheus form, and the drain that lets it stop without cutting replies.

Each reply opens a `Reply` (counted, and held open while it streams); on SIGTERM `Replies.drain` refuses new
ones with `Restarting` and waits for those in flight. Only counts, classes and durations are recorded:
never a key, a message or an address.
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from .errors import ChatError, Restarting
from .stream import ChatResult

REGISTRY = CollectorRegistry()  # our own, so importing this module twice in tests never clashes
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
MESSAGES = Counter("chat_messages", "Messages received.", registry=REGISTRY)
REPLIES = Counter(
    "chat_replies",
    "Replies ended, by outcome (ok, error, stopped, refused) and error class.",
    ["outcome", "error"],
    registry=REGISTRY,
)
STREAMING = Gauge("chat_replies_streaming", "Replies in progress now.", registry=REGISTRY)
TTFT = Histogram(
    "chat_time_to_first_token_seconds",
    "Seconds from sending a message upstream to its first token.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
TOKENS = Counter("chat_tokens", "Tokens the API counted, by direction (in, out).", ["direction"], registry=REGISTRY)
SPENT = Counter("chat_spent_usd", "US dollars the API reported spending.", registry=REGISTRY)
RETRIES = Counter(
    "chat_upstream_retries", "Upstream calls retried after a 429, 5xx or connection failure.", registry=REGISTRY
)


def exposition() -> tuple[bytes, str]:
    """The metrics page and its content type."""
    return generate_latest(REGISTRY), "text/plain; version=0.0.4; charset=utf-8"


class Reply:
    """One message's reply: call `finished` or `failed`, then `close` (in a `finally`); neither means stopped."""

    def __init__(self, replies: Replies, admitted: bool) -> None:
        self._replies = replies
        self._admitted = admitted
        self._outcome, self._error = "stopped", ""

    def admit(self) -> None:
        """Raise `Restarting` if this replica was draining when the message arrived."""
        if not self._admitted:
            raise Restarting(key="restarting")

    def finished(self, result: ChatResult | None) -> None:
        self._outcome = "ok"
        if result is None:
            return
        if result.time_to_first_token is not None:
            TTFT.observe(result.time_to_first_token)
        if result.usage:
            TOKENS.labels("in").inc(result.usage.prompt_tokens)
            TOKENS.labels("out").inc(result.usage.completion_tokens)
        if result.cost_usd and result.cost_usd > 0:  # a gateway's odd figure must not fail a finished reply
            SPENT.inc(result.cost_usd)

    def failed(self, error: Exception) -> None:
        self._outcome = "refused" if isinstance(error, Restarting) else "error"
        self._error = type(error).__name__ if isinstance(error, ChatError) else "Unexpected"

    def close(self) -> None:
        REPLIES.labels(self._outcome, self._error).inc()
        if self._admitted:
            self._admitted = False
            self._replies.release()


class Replies:
    """Counts replies in flight so that a draining replica knows when it may exit. Thread-safe."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._active = 0
        self.draining = False

    def start(self) -> Reply:
        """Count a new message; it holds this replica open until closed, unless the replica is draining."""
        MESSAGES.inc()
        with self._idle:
            admitted = not self.draining
            self._active += int(admitted)
        if admitted:
            STREAMING.inc()
        return Reply(self, admitted)

    def release(self) -> None:
        STREAMING.dec()
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def drain(self, seconds: float) -> bool:
        """Refuse new messages from now on; wait up to `seconds` for those in flight. True if all finished."""
        with self._idle:
            self.draining = True
            return self._idle.wait_for(lambda: self._active == 0, timeout=seconds)

    @property
    def active(self) -> int:
        return self._active
