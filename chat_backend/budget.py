"""budget: a daily cap on what the server's key may spend (`DAILY_BUDGET_USD`), kept in the Store.

Whoever shares a link pays for every visitor's messages. Each reply made with the server's key adds its cost to
today's entry in the ledger (namespace "budget", key = the UTC date), atomically, so restarts keep the day's
spend and replicas sharing the Store share one budget. Once the day's spend reaches the budget, new messages
get a notice; a reply already streaming is never cut, so the overshoot is at most the replies in flight.
A visitor's own key is never counted or limited.

The cost is the API's own figure (`ChatResult.cost_usd`). When a reply carries none, it is estimated from the
token usage with `PRICES_USD_PER_MTOK`, and the log line says "estimated". While the Store fails, the site keeps
serving: spend is counted in this process's memory (so this process still stops at the budget) and written to
the ledger once the Store answers again; a warning is logged at most once a minute. The check before a message
runs on the event loop, so it reads the ledger off it and waits a second at most: a store that hangs is a
store that fails, and is asked again only after STORE_RETRY_S.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import Settings, resolve_key
from .errors import ChatError
from .off_loop import OffLoop, store_calls
from .store import Store, StoreUnavailable, WarnEvery
from .stream import ChatResult

log = logging.getLogger(__name__)
NAMESPACE = "budget"
LEDGER_TTL_S = 8 * 86_400  # a day's entry stays a week after its day, for a look back, then expires
LOG_STEPS = 10  # a log line as spend crosses each tenth of the budget
STORE_WAIT_S = 1.0  # a reply waits this long for the ledger: for today's figure before it, for its write after
STORE_RETRY_S = 10.0  # after the store failed or was that slow, the last figure read serves this long

# USD per million (input, output) tokens, for an estimate only when the API reports no cost: MiniMax's list
# prices, rounded up. A model not listed here is estimated at the conservative default, so an estimate errs
# towards stopping early.
PRICES_USD_PER_MTOK: dict[str, tuple[float, float]] = {
    "abab6.5s-chat": (0.2, 1.1),
    "MiniMax-Text-01": (0.2, 1.1),
    "minimax/m1": (0.4, 2.2),
    "minimax/m2": (0.3, 1.2),
}
DEFAULT_PRICE_USD_PER_MTOK = (1.0, 5.0)
CHARS_PER_TOKEN = 3  # when even the token usage is missing; fewer characters per token than usual, to err high


class BudgetExhausted(ChatError):
    """The day's budget for the server's key is spent; the notice says when it resets and how to go on."""

    title = "Today's budget is used up"


@dataclass(frozen=True)
class Spend:
    """The cost of one reply; `estimated` when it came from the price table, not from the API."""

    usd: float
    estimated: bool


def cost_of(result: ChatResult, prompt_chars: int) -> Spend:
    """The API's cost figure when present and sane, else an estimate from token usage.

    A reply stopped before the usage arrived was still billed: its tokens are guessed at `CHARS_PER_TOKEN`
    from the prompt's and the received text's length, so that sending and stopping cannot spend unseen.
    """
    if result.cost_usd is not None and math.isfinite(result.cost_usd) and result.cost_usd >= 0:
        return Spend(result.cost_usd, estimated=False)
    tokens_in: float
    tokens_out: float
    if result.usage is not None:
        tokens_in, tokens_out = result.usage.prompt_tokens, result.usage.completion_tokens
    else:
        tokens_in, tokens_out = prompt_chars / CHARS_PER_TOKEN, len(result.text) / CHARS_PER_TOKEN
    price_in, price_out = PRICES_USD_PER_MTOK.get(result.model, DEFAULT_PRICE_USD_PER_MTOK)
    return Spend((tokens_in * price_in + tokens_out * price_out) / 1_000_000, estimated=True)


def host_pays(user_key: str | None, settings: Settings) -> bool:
    """Whether a call with this visitor's key field would use the server's key (and so counts towards the budget)."""
    try:
        return settings.api_key is not None and resolve_key(user_key, settings) == settings.api_key
    except ChatError:  # no key at all: nothing will be sent
        return False


class DailyBudget:
    """Today's spend against `limit_usd` (0 = no budget) in the Store, shared by every process that shares it."""

    def __init__(
        self,
        limit_usd: float,
        store: Store,
        clock: Callable[[], float] = time.time,
        off_loop: OffLoop = store_calls,
    ) -> None:
        self.limit_usd = limit_usd
        self._store = store
        self._clock = clock
        self._off_loop = off_loop
        self._lock = threading.Lock()
        self._unsaved: dict[str, float] = {}  # spend not yet in the ledger because the Store failed, by day
        self._last_known: dict[str, float] = {}  # the ledger's figure at the last successful read, by day
        self._in_flight: dict[str, float] = {}  # spend being written to the ledger now, by day
        self._ledger = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self._writing: concurrent.futures.Future[None] | None = None
        self._store_retry_at = -math.inf  # `check` reads the ledger again from this monotonic time on
        self._warn = WarnEvery(log)

    def _day(self) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(self._clock()))

    def _read_ledger(self) -> None:
        """Today's figure from the ledger, kept as the last known; raises `StoreUnavailable`."""
        day = self._day()
        raw = self._store.get(NAMESPACE, day)
        with self._lock:
            self._last_known[day] = float(raw) if raw else 0.0

    def _known_today(self) -> float:
        """The last figure read for today plus what this process has not written to the ledger yet."""
        day = self._day()
        with self._lock:
            return self._last_known.get(day, 0.0) + self._unsaved.get(day, 0.0) + self._in_flight.get(day, 0.0)

    def _store_failed(self, error: StoreUnavailable) -> None:
        self._warn("Daily budget: the store failed (%s); counting spend in this process only", error)

    def spent_today(self) -> float:
        """Today's spend in USD, read from the ledger now (blocking: not for the event loop)."""
        try:
            self._read_ledger()
        except StoreUnavailable as error:
            self._store_failed(error)
        return self._known_today()

    def today(self) -> tuple[float, float]:
        """(spent, budget) in USD for today; for metrics. The budget is 0 when there is none."""
        return (self.spent_today() if self.limit_usd else 0.0), self.limit_usd

    async def check(self) -> None:
        """Raise `BudgetExhausted` when today's budget is spent; call only for calls the host pays for.

        On the event loop: the ledger is read in a store thread for at most STORE_WAIT_S; slower or failing, the
        last figure read decides, and the ledger is not asked again for STORE_RETRY_S.
        """
        if not self.limit_usd:
            return
        if time.monotonic() >= self._store_retry_at:
            try:
                await self._off_loop(STORE_WAIT_S, self._read_ledger)
            except StoreUnavailable as error:
                self._store_retry_at = time.monotonic() + STORE_RETRY_S
                self._store_failed(error)
        if self._known_today() >= self.limit_usd:
            raise BudgetExhausted(key="budget_used_up", params=_until_reset(self._clock()))

    def record(self, result: ChatResult, prompt_chars: int) -> Spend | None:
        """Add one finished, failed or stopped reply's cost to today's ledger (`prompt_chars`: for an estimate).

        Called as the reply ends, which its last update waits for: the ledger is written in a thread of its own
        and waited on for STORE_WAIT_S at most. One write is out at a time; spend recorded meanwhile goes with
        the next write, and counts in this process from the start.
        """
        if not self.limit_usd or not result.billable:  # never sent, or refused by the API: nothing was billed
            return None
        spend = cost_of(result, prompt_chars)
        if spend.usd <= 0:
            return spend
        day = self._day()
        with self._lock:
            self._unsaved[day] = self._unsaved.get(day, 0.0) + spend.usd
            if self._writing is not None and not self._writing.done():
                return spend  # the store is slow: this goes with the next write
            amount = self._unsaved.pop(day)
            self._in_flight[day] = amount
            writing = self._writing = self._ledger.submit(self._write, day, amount, spend)
        with contextlib.suppress(TimeoutError):  # still out: it ends (and is accounted) on its own
            writing.result(STORE_WAIT_S)
        return spend

    def _write(self, day: str, amount: float, spend: Spend) -> None:
        """`amount` into the ledger; if the store fails, it stays this process's unsaved spend."""
        try:
            total = self._store.add(NAMESPACE, day, amount, ttl=LEDGER_TTL_S)
        except StoreUnavailable as error:
            self._store_failed(error)
            with self._lock:
                del self._in_flight[day]
                self._unsaved[day] = self._unsaved.get(day, 0.0) + amount
            return
        with self._lock:
            del self._in_flight[day]
            self._last_known[day] = total
        before = total - amount
        if math.floor(before / self.limit_usd * LOG_STEPS) < math.floor(total / self.limit_usd * LOG_STEPS):
            log.info(
                "Daily budget: $%.4f of $%.2f spent today (%d%%)%s",
                total,
                self.limit_usd,
                total / self.limit_usd * 100,
                ", the last reply's cost estimated" if spend.estimated else "",
            )
        elif spend.estimated:
            log.info("Daily budget: reply cost $%.6f estimated from token usage (the API reported none)", spend.usd)


def _until_reset(now: float) -> dict[str, int]:
    """Hours and minutes until the budget resets at 00:00 UTC."""
    left = 86_400 - now % 86_400
    return {"hours": int(left // 3600), "minutes": int(left % 3600 // 60)}
