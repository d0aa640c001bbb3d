"""quotas: how often one visitor may send, how many replies may call the API at once, and who the visitor is.

A public Space spends its owner's credits, so each client address and (as a courtesy) each browser session gets
a moving-window message rate, and the whole server a cap on simultaneous upstream calls, of which one address
may hold only a part and one chat only a few, so that one visitor never starves the others. The windows live in
the `limits` library's memory storage, or in Redis with `REDIS_URL` so that replicas share them; while Redis
fails, each replica falls back to its own memory and says so in the log at most once a minute. Every refusal is
a `ChatError` that says how long to wait; a refused message never counts against the sender's rate. Messages
refused for what they hold count in a window of their own, past which an address is refused before any work.
A limit of 0 is off.

The session id is chosen by the client, so the per-session rate only slows a runaway tab. What protects the
host's key is the per-address rate (the address comes from `visitor_address`, which a visitor cannot spoof),
the upstream cap and the daily budget.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage, SlidingWindowCounterSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter

from .config import Settings
from .errors import BadInput, Busy, ChatError, InvalidKey, InvalidSettings, Throttled
from .i18n import count_of
from .off_loop import OffLoop, StoreCalls, on_loop, store_calls
from .store import REDIS_TIMEOUT_S, StoreUnavailable, WarnEvery

log = logging.getLogger(__name__)
T = TypeVar("T")
SHARED_RETRY_S = 10.0  # after a Redis failure, use this replica's memory for this long before trying Redis again
MAX_KEY_CHARS = 100  # a session id is client-chosen: never let it grow a storage key without bound
# How long a message may wait for its rates: longer than the Redis client's connect and read timeouts, after which
# `Windows` answers from memory by itself, so only a store that holds every store thread that long refuses.
WINDOWS_WAIT_S = 2 * REDIS_TIMEOUT_S + 1
REFUSED_INPUT = (InvalidKey, InvalidSettings, BadInput)  # refused for what the sender sent, not for the server's state
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


def sliding_counter_wait(
    limiter: SlidingWindowCounterRateLimiter, item: RateLimitItem, key: tuple[str, ...], cost: int
) -> float:
    """Seconds until `cost` fits under a sliding window counter, which weighs the previous window's count by the
    part of it still inside the sliding window. The library's own reset time is when one more unit fits (for a
    budget of bytes, one byte), and, with only this window's count, this window's end: when that count starts to
    fade, not when it has faded enough (an hour's upload share said a minute, near the end of an hour). A cost
    over the whole amount never fits: the wait until nothing is counted (the refusal names the amount)."""
    storage = cast(SlidingWindowCounterSupport, limiter.storage)
    expiry, room = item.get_expiry(), max(item.amount - cost, 0)
    previous, fading, current, current_ttl = storage.get_sliding_window(item.key_for(*key), expiry)
    if current <= room:  # once the previous count's weight (`fading` seconds left of it) has fallen far enough
        return max(0.0, fading - expiry * (room - current) / previous) if previous else 0.0
    # This window's count must fade too: it starts to when this window ends (the counter keeps it twice as long).
    return max(0.0, current_ttl - expiry) + expiry * (1 - room / current)


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
        nothing."""
        limiter = self._limiter()
        try:
            if limiter.test(item, *key, cost=cost):
                return 0.0
            if isinstance(limiter, SlidingWindowCounterRateLimiter):
                return max(sliding_counter_wait(limiter, item, key, cost), 1.0)
            reset = limiter.get_window_stats(item, *key).reset_time  # a moving window: when its oldest hit leaves
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


class Slots:
    """Upstream calls in flight: at most `total` (0: no cap), of which `per_address` for one client address and
    `per_session` for one chat of that address.

    Kept in this process's memory, per replica: what they bound (the reading threads, the connection pool) is
    the process's own, and taking a slot must never wait on a store. A visitor whose sessions the balancer
    spreads over replicas gets a share on each; across replicas the address rate, kept in Redis, bounds them.
    """

    def __init__(self, total: int, per_address: int = 0, per_session: int = 0) -> None:
        self._caps = ((total, "busy"), (per_address, "busy_address"), (per_session, "busy_session"))
        self._held: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()

    @staticmethod
    def _holders(session: str, address: str) -> tuple[tuple[str, ...], ...]:
        """Who a call counts for: the server, its address, its chat (a session id is only unique per address)."""
        return (), (address,), (address, session)

    def take(self, session: str, address: str) -> None:
        """Hold one slot, or raise `Busy` naming the first cap that is reached; never waits."""
        holders = self._holders(session, address)
        with self._lock:
            for holder, (cap, key) in zip(holders, self._caps, strict=True):
                if cap and self._held[holder] >= cap:
                    params = {"count": cap} if key == "busy" else {"replies": count_of(cap, "replies")}
                    raise Busy(key=key, params=params)
            self._held.update(holders)

    def give_back(self, session: str, address: str) -> None:
        with self._lock:
            self._held.subtract(self._holders(session, address))
            for holder in self._holders(session, address):
                if self._held[holder] <= 0:
                    del self._held[holder]  # an address or chat with nothing in flight takes no memory


class Guard:
    """The limits one message must pass before it may call the API.

    `admit` is awaited on the event loop: the windows, in Redis with `REDIS_URL`, are read and counted in store
    threads (`off_loop`), and the slots are taken in memory, so a Redis that hangs delays only the message that
    meets it (until `Windows` falls back to memory), never the streams already running.
    """

    def __init__(
        self,
        per_session: int,
        per_address: int,
        max_upstream: int,
        storage_url: str | None = None,
        *,
        upstream_per_address: int = 0,
        upstream_per_session: int = 0,
        refused_per_address: int = 0,
        off_loop: OffLoop = store_calls,
    ) -> None:
        self._windows = Windows(storage_url)
        self._off_loop: StoreCalls = off_loop if storage_url else on_loop  # Redis can hang; memory cannot
        self._refusals = RateLimitItemPerMinute(refused_per_address) if refused_per_address > 0 else None
        self._limits = [
            (RateLimitItemPerMinute(limit), scope)
            for limit, scope in ((per_session, "session"), (per_address, "address"))
            if limit > 0
        ]
        self._slots = Slots(max_upstream, upstream_per_address, upstream_per_session)

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        return cls(
            settings.rate_per_session,
            settings.rate_per_address,
            settings.max_upstream,
            settings.redis_url,
            upstream_per_address=settings.max_upstream_per_address,
            upstream_per_session=settings.max_upstream_per_session,
            refused_per_address=settings.refused_per_address,
        )

    async def screen(self, address: str) -> None:
        """Raise `Throttled` at once, before any work on the message, for an address whose messages were refused
        for their input `refused_per_address` times in the last minute: refusing costs little, but not nothing."""
        if self._refusals is None:
            return
        wait = await self._in_store_thread(
            self._windows.wait_needed, self._refusals, "refused", address[:MAX_KEY_CHARS]
        )
        if wait:
            raise _throttled("refused", self._refusals, wait)

    async def refused(self, address: str, error: ChatError) -> None:
        """Count a message refused for what it held (a key or setting no call takes, an input over a limit)."""
        if self._refusals is None or not isinstance(error, REFUSED_INPUT):
            return
        with contextlib.suppress(Busy):  # no store thread free: one refusal uncounted
            await self._in_store_thread(self._windows.hit, self._refusals, "refused", address[:MAX_KEY_CHARS])

    @asynccontextmanager
    async def admit(self, session: str, address: str) -> AsyncIterator[None]:
        """Hold one upstream slot for the duration of a call; raise `Throttled` or `Busy` instead of waiting.

        Every window is tested before any is counted, and the message is counted only once it holds a slot, so
        a refusal never uses up the sender's rate. Two messages tested at the same instant may both pass: the
        overshoot is bounded by the messages admitted at once.
        """
        keys = {"session": session[:MAX_KEY_CHARS], "address": address[:MAX_KEY_CHARS]}
        refusal = await self._in_store_thread(self._refusal, keys)
        if refusal:
            raise refusal
        self._slots.take(keys["session"], keys["address"])
        try:
            await self._in_store_thread(self._count, keys)
            yield
        finally:
            self._slots.give_back(keys["session"], keys["address"])

    async def _in_store_thread(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` off the event loop; when every store thread stays busy too long, the message is refused
        (fail closed) rather than let through unchecked."""
        try:
            return await self._off_loop(WINDOWS_WAIT_S, call, *args)
        except StoreUnavailable:
            raise Busy(key="busy_checking") from None

    def _refusal(self, keys: dict[str, str]) -> Throttled | None:
        """The refusal for the first full window, if any; records nothing."""
        for item, scope in self._limits:
            wait = self._windows.wait_needed(item, scope, keys[scope])
            if wait:
                return _throttled(scope, item, wait)
        return None

    def _count(self, keys: dict[str, str]) -> None:
        for item, scope in self._limits:
            self._windows.hit(item, scope, keys[scope])


def _throttled(scope: str, item: RateLimitItem, wait: float) -> Throttled:
    """The refusal by a full window of `scope` ("session", "address", "refused"), saying how long to wait."""
    return Throttled(key=f"throttled_{scope}", params={"amount": item.amount, "seconds": math.ceil(wait)})


def _limits_url(url: str) -> str:
    """`limits` spells a Redis socket path `redis+unix://`; redis-py spells it `unix://`."""
    return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url


def _as_tuple(errors: type[BaseException] | tuple[type[BaseException], ...]) -> tuple[type[BaseException], ...]:
    return errors if isinstance(errors, tuple) else (errors,)
