"""retry: the retry policy mounted on the Session's adapter, plus what urllib3's `Retry` can't express.

urllib3 retries connection failures and the listed statuses inside `urlopen`, before the body is read,
so a retry can never repeat text the user already saw. Added here: back-off from the first retry on (urllib3
waits 0 s before its first), jitter, and a budget on the total waiting so that a long `Retry-After` ends
in a clear message instead of a frozen reply.
"""

from __future__ import annotations

import random
import time
from typing import Any

from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from .metrics import RETRIES
from .stopping import STOPPED, StoppedDuringBackOff

# Which error answers a retry can help, status by status (each retry makes the visitor wait longer):
RETRY_STATUSES = frozenset(
    {
        429,  # rate limited: passes; Retry-After says when, within the retry budget
        500,  # internal error or a model under maintenance: usually a moment's hiccup on one backend
        502,  # bad gateway: a proxy lost its upstream; the next attempt often reaches a healthy one
        503,  # temporarily unavailable: what the status means
    }
)
# Not retried: 504 is the API's *generation* timeout; the same request would take as long again, so retrying
# made the visitor wait three timeouts before the notice. 400/401/403/404 would fail the same way again.
INITIAL_RETRY_DELAY = 0.5
STOP_CHECK_S = 0.05  # how often a back-off looks whether the reply was stopped meanwhile


MAX_RETRY_DELAY = 8.0


def backoff_delay(attempt: int, initial: float = INITIAL_RETRY_DELAY, cap: float = MAX_RETRY_DELAY) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): doubling, capped, times a random 0.75–1."""
    return min(cap, initial * 2.0 ** (attempt - 1)) * (0.75 + random.random() / 4)


class BudgetedRetry(Retry):
    """A `Retry` that gives up, handing back the last response, once waiting would exceed `budget` seconds."""

    def __init__(self, *args: Any, budget: float = 10.0, waited: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.budget = budget
        self.waited = waited
        self.next_wait = 0.0

    def new(self, **kw: Any) -> BudgetedRetry:
        kw.setdefault("budget", self.budget)
        kw.setdefault("waited", self.waited)
        return super().new(**kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BudgetedRetry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = self._server_wait(response)
        if wait is None:
            wait = backoff_delay(len(retry.history))
        if self.waited + wait > self.budget:
            reason = error or ResponseError(f"waiting {wait:.1f}s more would exceed the {self.budget:g}s retry budget")
            raise MaxRetryError(_pool, url or "", reason)
        retry.waited = self.waited + wait
        retry.next_wait = wait
        return retry

    def _server_wait(self, response: Any) -> float | None:
        if response is None or not self.respect_retry_after_header:
            return None
        try:
            return self.get_retry_after(response)
        except InvalidHeader:
            return None

    def sleep(self, response: Any = None) -> None:
        RETRIES.inc()  # urllib3 sleeps once before each retry
        stopped = STOPPED.get()
        deadline = time.monotonic() + self.next_wait
        while (left := deadline - time.monotonic()) > 0 or stopped and stopped():
            if stopped and stopped():
                raise StoppedDuringBackOff("stopped while waiting to retry")
            time.sleep(min(left, STOP_CHECK_S) if stopped else left)


def make_retry(max_retries: int, budget: float) -> BudgetedRetry:
    """Connection failures and 429/5xx are retried; reads are not, since the server may already have billed."""
    return BudgetedRetry(
        total=None,
        connect=max_retries,
        read=0,
        status=max_retries,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "POST"}),
        status_forcelist=RETRY_STATUSES,
        raise_on_status=False,
        raise_on_redirect=False,
        budget=budget,
    )
