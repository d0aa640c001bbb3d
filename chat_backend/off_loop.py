"""off_loop: blocking store calls (SQLite, Redis) awaited from the event loop, in threads of their own, for a
bounded time.

A store can hang: a Redis that accepts connections and never answers holds each call for the client's timeout,
a SQLite file another process has locked for its busy timeout. Made on the event loop, such a call stops every
stream of the process; made in the loop's shared thread pool (anyio's 40 threads), it takes threads the chat's
own work waits for. So the loop hands them to a small pool of its own and waits at most a given time; a call
that takes longer raises `StoreUnavailable` to its caller, which degrades its feature, and finishes in its
thread (the store's own timeouts end it). A hung store therefore holds at most `threads` threads, never more,
and callers beyond those wait for one within the same time limit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .store import StoreUnavailable

T = TypeVar("T")
STORE_THREADS = 8  # store calls in flight for the event loop at once


class StoreCalls(Protocol):
    """How a store's blocking calls are awaited: `OffLoop`, or `on_loop` for a store that cannot hang."""

    async def __call__(self, wait: float, call: Callable[..., T], *args: Any) -> T: ...


async def on_loop(wait: float, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` at once, on the loop: for a store in memory, which cannot hang and answers in microseconds, a
    thread costs more than the call (three a message for the rate windows: 3% of the app's CPU in a burst of 64)."""
    return call(*args)


class OffLoop:
    """Awaitable calls of blocking functions in at most `threads` threads, each waited on for at most `wait`."""

    def __init__(self, threads: int = STORE_THREADS) -> None:
        self._threads = threads
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="store")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = asyncio.Semaphore(threads)

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        """The free threads, counted for the running loop (an asyncio semaphore belongs to one loop)."""
        if self._loop is not loop:
            self._loop, self._free = loop, asyncio.Semaphore(self._threads)
        return self._free

    async def __call__(self, wait: float, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` in a thread of the pool; `StoreUnavailable` if it has not returned within `wait` seconds
        (waiting for a free thread included). Its own exceptions reach the caller as they are.

        Timed with `asyncio.timeout_at`, not `wait_for`: Python 3.11's `wait_for` returns the answer and drops a
        cancel that arrives with it, and a Stop pressed as a message started then let the reply go on."""
        loop = asyncio.get_running_loop()
        free, deadline = self._semaphore(loop), loop.time() + wait
        try:
            async with asyncio.timeout_at(deadline):
                await free.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"no thread for the store within {wait:g} s") from None
        running = loop.run_in_executor(self._pool, call, *args)

        def finished(done: asyncio.Future[T]) -> None:  # on the loop, when the thread is free again
            free.release()
            if not done.cancelled():
                done.exception()  # retrieved, so a call that outlived its caller logs no "never retrieved"

        running.add_done_callback(finished)
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(running)
        except TimeoutError:
            raise StoreUnavailable(f"the store did not answer within {wait:g} s") from None


store_calls = OffLoop()  # shared by everything that awaits the store; its threads start on first use
