"""login: failed logins per address, so that guessing the shared password takes years, not minutes.

`LoginThrottle` answers 429 to an address after too many failed logins. Plain ASGI, in front of Gradio's /login.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from chat_backend.quotas import scope_address

from .asgi import ASGIApp, Message, Receive, Scope, Send, refuse

MAX_TRACKED_ADDRESSES = 100_000  # beyond this the idlest addresses are forgotten, so memory stays bounded


class _Failures:
    """Login attempts per address in the last `window` seconds. An attempt counts from the moment it starts, so
    parallel guesses cannot slip past the limit together, and is forgotten again when it succeeds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, key: str) -> tuple[float, float]:
        """(seconds to wait, 0) when `key` is over the limit; else (0, a token for `succeeded`)."""
        now = self._clock()
        with self._lock:
            times = self._times.setdefault(key, deque())
            self._times.move_to_end(key)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return times[0] + self.window - now, 0.0
            times.append(now)
            if len(self._times) > MAX_TRACKED_ADDRESSES:
                self._times.popitem(last=False)
            return 0.0, now

    def succeeded(self, key: str, token: float) -> None:
        with self._lock:
            times = self._times.get(key)
            if times and token in times:
                times.remove(token)


class LoginThrottle:
    """After `max_failures` failed logins from one address within `window` seconds, POST /login answers 429
    until the oldest of them is `window` seconds old. Other addresses and successful logins are unaffected."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_failures: int,
        window: float,
        trusted_hops: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.trusted_hops = trusted_hops
        self._attempts = _Failures(max_failures, window, clock) if max_failures > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._attempts is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != "/login"
        ):
            return await self.app(scope, receive, send)
        address = scope_address(scope, self.trusted_hops)
        wait, token = self._attempts.attempt(address)
        if wait:
            seconds = str(math.ceil(wait))
            return await refuse(scope, send, 429, "edge_login_throttled", {"retry-after": seconds}, seconds=seconds)
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching)
        if status < 400:
            self._attempts.succeeded(address, token)
