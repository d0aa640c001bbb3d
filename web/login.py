"""login: failed logins per address, so that guessing the shared password takes years, not minutes.

`LoginThrottle` answers 429 to an address after too many failed logins within a window. The failures are kept in
`chat_backend.quotas.Windows` like the other limits: in Redis with `REDIS_URL`, so the limit holds for every
replica together, else in this process's memory. Plain ASGI, in front of Gradio's POST /login.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItemPerSecond

from chat_backend.quotas import Windows, scope_address

from .asgi import ASGIApp, Message, Receive, Refused, Scope, Send, WindowCalls, refuse


class _Turns:
    """One login at a time per address in this process, so that parallel guesses each see the failures of those
    before them. An address is forgotten as soon as none of its logins is waiting: memory follows the requests."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: Counter[str] = Counter()

    @asynccontextmanager
    async def of(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]


class LoginThrottle:
    """After `max_failures` failed logins from one address within `window` seconds, POST /login answers 429
    until the oldest of them is `window` seconds old. Other addresses and successful logins are unaffected; a
    login that ends in an error counts as failed. Across replicas two parallel guesses may both be let through
    before either has failed: at most one more per replica."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_failures: int,
        window: float,
        trusted_hops: int,
        storage_url: str | None = None,
    ) -> None:
        self.app = app
        self.trusted_hops = trusted_hops
        self._item = RateLimitItemPerSecond(max_failures, max(1, math.ceil(window))) if max_failures > 0 else None
        self._failures = WindowCalls(Windows(storage_url))
        self._turns = _Turns()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._item is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != "/login"
        ):
            return await self.app(scope, receive, send)
        item, windows = self._item, self._failures.windows
        address = scope_address(scope, self.trusted_hops)
        async with self._turns.of(address):
            wait = await self._failures(windows.wait_needed, item, "login", address)
            if wait:
                seconds = str(math.ceil(wait))
                refusal = Refused(429, "edge_login_throttled", {"retry-after": seconds}, seconds=seconds)
                return await refuse(scope, send, refusal)
            started = False

            async def watching(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    if not 200 <= message["status"] < 400:  # counted before the visitor can see it and try again,
                        await self._failures(windows.hit, item, "login", address)  # on this replica or another
                await send(message)

            try:
                await self.app(scope, receive, watching)
            finally:
                if not started:  # no answer at all counts as a failure too
                    await self._failures(windows.hit, item, "login", address)
