"""pacing: fewer, fuller updates to the browser while a reply streams.

Every update costs the web server a few milliseconds of CPU whatever its size, so sending one per token
caps how many people one machine can serve. `paced` passes the newest value on at most once per interval
and always passes the last one, so the finished reply is never held back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
DEFAULT_INTERVAL = 0.05  # seconds: 20 updates a second reads as smooth


def paced(values: Iterable[T], interval: float = DEFAULT_INTERVAL, clock: Callable[[], float] = time.monotonic) -> Iterator[T]:
    """Yield the first value at once, then the newest value once `interval` has passed since the last yield,
    and finally the last value if it was held back."""
    last_sent = -float("inf")
    held: list[T] = []
    for value in values:
        now = clock()
        if now - last_sent >= interval:
            held.clear()
            last_sent = now
            yield value
        else:
            held[:] = [value]
    if held:
        yield held[0]
