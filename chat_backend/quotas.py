"""quotas: how often one visitor may send, how many replies may call the API at once, and who the visitor is.

A public Space spends its owner's credits, so each client address and (as a courtesy) each browser session gets
a moving-window message rate, and the whole server a cap on simultaneous upstream calls. The windows live in
the `limits` library's memory storage, or in Redis with `REDIS_URL` so that replicas share them; while Redis
fails, each replica falls back to its own memory and says so in the log at most once a minute. Every refusal is
a `ChatError` that says how long to wait; a refused message never counts against the sender. A limit of 0 is off.

The session id is chosen by the client, so the per-session rate only slows a runaway tab. What protects the
host's key is the per-address rate (the address comes from `visitor_address`, which a visitor cannot spoof),
the upstream cap and the daily budget.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter

from .errors import Busy, Throttled
from .store import REDIS_TIMEOUT_S, WarnEvery

log = logging.getLogger(__name__)
SHARED_RETRY_S = 10.0  # after a Redis failure, use this replica's memory for this long before trying Redis again
MAX_KEY_CHARS = 100  # a session id is client-chosen: never let it grow a storage key without bound
# One warning per Redis for all the windows of a process (the message rates, the edge's budgets, the login limit):
# a failing Redis is one piece of news.
_FALLBACK_WARNINGS: dict[str, WarnEvery] = {}


def visitor_address(forwarded_for: str, peer: str, trusted_hops: int) -> str:
    """The visitor's address: the `X-Forwarded-For` entry `trusted_hops` from the right, else the socket peer.

    Each proxy appends the address it saw, so only the last `trusted_hops` entries were written by proxies we
    trust; whatever the visitor put in front of them is ignored. A chain shorter than expected still starts
    with an entry a trusted proxy wrote. IPv6 addresses are grouped by /64, the block one subscriber gets.
    """
    entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()] if trusted_hops > 0 else []
    chosen = entries[-min(trusted_hops, len(entries))] if entries else peer.strip()
    try:
        address = ipaddress.ip_address(chosen)
    except ValueError:
        return chosen[:MAX_KEY_CHARS]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def scope_address(scope: Mapping[str, Any], trusted_hops: int) -> str:
    """The visitor's address for an ASGI request scope, by `visitor_address`'s rule: the one reader of the header."""
    wanted = b"x-forwarded-for"
    forwarded = ",".join(value.decode("latin-1") for key, value in scope["headers"] if key.lower() == wanted)
    peer = scope.get("client") or ("", 0)
    return visitor_address(forwarded, peer[0], trusted_hops)


class Windows:
    """Rate windows for keys, shared through Redis when given, else (and while Redis fails) in memory.

    Moving windows by default (exact, one entry per event); `SlidingWindowCounterRateLimiter` for amounts such as
    bytes, where an event costs thousands (two counters per key, whatever the cost).
    """

    def __init__(self, storage_url: str | None = None, strategy: type[RateLimiter] = MovingWindowRateLimiter) -> None:
        self._local = strategy(MemoryStorage())
        self._shared: RateLimiter | None = None
        self._errors: tuple[type[BaseException], ...] = ()
        if storage_url:
            storage = cast(
                Storage,
                storage_from_string(  # synchronous: the URL is never async+redis://
                    _limits_url(storage_url), socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
                ),
            )
            self._shared = strategy(storage)
            self._warn = _FALLBACK_WARNINGS.setdefault(storage_url, WarnEvery(log))
            self._errors = (*_as_tuple(storage.base_exceptions), OSError)
        self._shared_down_until = 0.0

    @property
    def shared(self) -> bool:
        """Whether calls may wait on Redis (blocking I/O: an event loop makes them from a thread)."""
        return self._shared is not None

    def _limiter(self) -> RateLimiter:
        if self._shared is not None and time.monotonic() >= self._shared_down_until:
            return self._shared
        return self._local

    def wait_needed(self, item: RateLimitItem, *key: str, cost: int = 1) -> float:
        """Seconds until `cost` more fits under `item` for `key` (0 if it fits now, else at least 1); records
        nothing. The wait is the window's own estimate: for a sliding counter, when it next has room."""
        limiter = self._limiter()
        try:
            if limiter.test(item, *key, cost=cost):
                return 0.0
            reset = limiter.get_window_stats(item, *key).reset_time
        except self._errors as error:
            return self._fail_over(error).wait_needed(item, *key, cost=cost)
        return max(reset - time.time(), 1.0)

    def hit(self, item: RateLimitItem, *key: str, cost: int = 1) -> bool:
        """Count `cost` against `item` for `key` unless that would go over it; whether it was counted. Testing and
        counting are one step (a Lua script in Redis), so parallel hits cannot pass the limit together."""
        limiter = self._limiter()
        try:
            return limiter.hit(item, *key, cost=cost)
        except self._errors as error:
            return self._fail_over(error).hit(item, *key, cost=cost)

    def _fail_over(self, error: BaseException) -> Windows:
        self._shared_down_until = time.monotonic() + SHARED_RETRY_S
        self._warn("Rate limits fall back to this process's memory: Redis failed (%s)", type(error).__name__)
        return self


class Guard:
    """The limits one message must pass before it may call the API."""

    def __init__(self, per_session: int, per_address: int, max_upstream: int, storage_url: str | None = None) -> None:
        self._windows = Windows(storage_url)
        self._limits = [
            (RateLimitItemPerMinute(limit), scope)
            for limit, scope in ((per_session, "session"), (per_address, "address"))
            if limit > 0
        ]
        self._max_upstream = max_upstream
        self._slots = threading.BoundedSemaphore(max_upstream) if max_upstream > 0 else None

    @contextmanager
    def admit(self, session: str, address: str) -> Iterator[None]:
        """Hold one upstream slot for the duration of a call; raise `Throttled` or `Busy` instead of waiting.

        Every window is tested before any is counted, and the message is counted only once it holds a slot, so
        a refusal never uses up the sender's rate. Two messages tested at the same instant may both pass: the
        overshoot is bounded by the messages admitted at once.
        """
        keys = {"session": session[:MAX_KEY_CHARS], "address": address[:MAX_KEY_CHARS]}
        for item, scope in self._limits:
            wait = self._windows.wait_needed(item, scope, keys[scope])
            if wait:
                raise Throttled(key=f"throttled_{scope}", params={"amount": item.amount, "seconds": math.ceil(wait)})
        if self._slots is not None and not self._slots.acquire(blocking=False):
            raise Busy(key="busy", params={"count": self._max_upstream})
        try:
            for item, scope in self._limits:
                self._windows.hit(item, scope, keys[scope])
            yield
        finally:
            if self._slots is not None:
                self._slots.release()


def _limits_url(url: str) -> str:
    """`limits` spells a Redis socket path `redis+unix://`; redis-py spells it `unix://`."""
    return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url


def _as_tuple(errors: type[BaseException] | tuple[type[BaseException], ...]) -> tuple[type[BaseException], ...]:
    return errors if isinstance(errors, tuple) else (errors,)
