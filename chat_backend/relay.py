"""relay: a blocking iterator read in a thread of its own, its newest item awaited from asyncio code.

A reply is read from a socket that blocks; the web server's event loop must not. So the reading runs in a
thread per reply, and the loop awaits what it produces. Awaiting, rather than blocking in a worker, is what
lets a cancelled request (the visitor pressed Stop) interrupt the wait at once, even while the model is
silent; the caller then stops the producer (closing the stream wakes the blocked read).

Items are snapshots (the text so far), so when several arrive between two turns of the loop only the newest
is handed on: a busy loop does less work, not more. A producer that holds items back (pacing) can also be
asked for one when it has been quiet for a while (`on_quiet`), since its own thread is blocked reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
_ITEM, _END, _ERROR = "item", "end", "error"


async def newest_in_thread(
    produce: Callable[[], Iterable[T]],
    name: str = "relay",
    *,
    quiet: float | None = None,
    on_quiet: Callable[[], T | None] = lambda: None,
) -> AsyncIterator[T]:
    """Iterate `produce()` in a new daemon thread; yield its newest item each time the loop gets to it, and
    raise what it raised. Every `quiet` seconds without an item, yield what `on_quiet()` gives, unless None.
    Cancelling the caller leaves the thread to end when its iterable does."""
    loop = asyncio.get_running_loop()
    pending: list[tuple[str, Any]] = []
    ready = asyncio.Event()

    def deliver(kind: str, value: Any) -> None:  # runs on the event loop
        pending.append((kind, value))
        ready.set()

    def send(kind: str, value: Any = None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone (server shutting down): nobody is waiting
            loop.call_soon_threadsafe(deliver, kind, value)

    def pump() -> None:
        try:
            for item in produce():
                send(_ITEM, item)
        except BaseException as exc:  # handed to the awaiting side, which decides
            send(_ERROR, exc)
        else:
            send(_END)

    threading.Thread(target=pump, name=name, daemon=True).start()
    while True:
        try:
            await asyncio.wait_for(ready.wait(), quiet)
        except TimeoutError:
            if not ready.is_set() and (item := on_quiet()) is not None:  # an item that just came is newer
                yield item
            continue
        ready.clear()
        batch = pending[:]
        pending.clear()
        items = [value for kind, value in batch if kind == _ITEM]
        if items:
            yield items[-1]
        kind, value = batch[-1]
        if kind == _ERROR:
            raise value
        if kind == _END:
            return
