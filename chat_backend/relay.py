"""relay: a blocking iterator read in a thread of its own, its newest item awaited from asyncio code.

A reply is read from a socket that blocks; the event loop must not. So the reading runs in a thread per reply
and the loop awaits what it produces, which lets a cancelled request (Stop) end the wait at once even while the
model is silent; the caller then stops the producer. The loop is woken only by the thread handing something
over, or by a timer armed while the producer holds something back (`Due`): no task, timer or poll per item.
Items are snapshots (the text so far), so of several that arrived between two turns only the newest is handed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
_ITEM, _DUE, _RELEASE, _END, _ERROR = "item", "due", "release", "end", "error"


@dataclass(frozen=True)
class Due:
    """Handed over by a producer that has begun holding something back: unless an item comes first, the loop
    asks `release()` for it at `at` (on `time.monotonic()`)."""

    at: float


async def newest_in_thread(
    produce: Callable[[], Iterable[T | Due]],
    name: str = "relay",
    *,
    release: Callable[[], T | None] = lambda: None,
) -> AsyncIterator[T]:
    """Iterate `produce()` in a new daemon thread; yield its newest item each time the loop gets to it, and
    raise what it raised. After a `Due`, yield what `release()` gives at its time, unless an item came first.
    Cancelling the caller leaves the thread to end when its iterable does."""
    loop = asyncio.get_running_loop()
    inbox: list[tuple[str, Any]] = []
    waiter: asyncio.Future[None] | None = None
    timer: asyncio.TimerHandle | None = None

    def deliver(kind: str, value: Any = None) -> None:  # on the loop
        inbox.append((kind, value))
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def send(kind: str, value: Any = None) -> None:  # from the thread
        with contextlib.suppress(RuntimeError):  # the loop is gone (server shutting down): nobody is waiting
            loop.call_soon_threadsafe(deliver, kind, value)

    def pump() -> None:
        try:
            for item in produce():
                send(_DUE if isinstance(item, Due) else _ITEM, item)
        except BaseException as exc:  # handed to the awaiting side, which decides
            send(_ERROR, exc)
        else:
            send(_END)

    def arm(at: float) -> None:
        nonlocal timer
        if timer is not None:
            timer.cancel()
        timer = loop.call_later(max(0.0, at - time.monotonic()), deliver, _RELEASE)

    threading.Thread(target=pump, name=name, daemon=True).start()
    try:
        while True:
            if not inbox:
                waiter = loop.create_future()
                await waiter
            batch, inbox = inbox, []
            newest: list[T] = []
            wants_release, ended = False, None
            for kind, value in batch:
                if kind == _ITEM:
                    newest[:] = [value]
                    if timer is not None:  # what was held went out with this item
                        timer.cancel()
                        timer = None
                elif kind == _DUE:
                    arm(value.at)
                elif kind == _RELEASE:
                    timer, wants_release = None, True
                else:
                    ended = (kind, value)
            if wants_release and (held := release()) is not None:  # asked after the batch's items: newer
                newest[:] = [held]
            if newest:
                yield newest[0]
            if ended is not None:
                if ended[0] == _ERROR:
                    raise ended[1]
                return
    finally:
        if timer is not None:
            timer.cancel()
