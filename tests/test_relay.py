"""relay: a blocking iterator read in its own thread and awaited from asyncio code, woken only by what the
thread hands over or by a timer while something is held back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from chat_backend.relay import Due, newest_in_thread


async def collect(produce: object) -> list[object]:
    return [item async for item in newest_in_thread(produce)]  # type: ignore[arg-type]


def test_items_arrive_in_order_and_the_end_ends_the_loop() -> None:
    assert asyncio.run(collect(lambda: iter(range(3)))) in ([0, 1, 2], [1, 2], [0, 2], [2])
    assert asyncio.run(collect(lambda: iter(["only"]))) == ["only"]


def test_when_the_loop_falls_behind_only_the_newest_item_is_handed_on() -> None:
    async def main() -> list[int]:
        produced, release = threading.Event(), threading.Event()

        def produce() -> Iterator[int]:
            yield from range(100)
            produced.set()
            release.wait(5)

        relay = newest_in_thread(produce)
        first = await anext(relay)
        await asyncio.to_thread(produced.wait, 5)  # the producer ran ahead of the loop: 99 items are waiting
        release.set()
        return [first] + [item async for item in relay]

    items = asyncio.run(main())
    assert items[-1] == 99 and len(items) < 10


def test_a_failure_in_the_thread_is_raised_where_it_is_awaited() -> None:
    def produce() -> Iterator[str]:
        yield "partial"
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        asyncio.run(collect(produce))


def test_cancelling_the_awaiting_side_returns_at_once_while_the_thread_blocks() -> None:
    started, unblock, finished = threading.Event(), threading.Event(), threading.Event()

    def produce() -> Iterator[str]:
        try:
            started.set()
            unblock.wait(5)
            yield "late"
        finally:
            finished.set()

    async def main() -> None:
        task = asyncio.ensure_future(collect(produce))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)

    asyncio.run(main())
    assert not finished.is_set()  # still blocked: the caller must stop it (app.py closes the stream)
    unblock.set()
    assert finished.wait(10)


def test_while_the_producer_is_quiet_the_loop_asks_for_what_it_holds_back_when_it_falls_due() -> None:
    first_seen, released = threading.Event(), threading.Event()
    held = ["The answer is 42."]

    def produce() -> Iterator[str | Due]:
        yield "The answer"
        first_seen.wait(5)
        yield Due(time.monotonic() + 0.05)  # " is 42." arrived, but is held back for 50 ms
        released.wait(5)  # the model pauses: only the loop can send the held text now
        yield "The answer is 42. Done."

    def release() -> str | None:
        if held:
            released.set()
            return held.pop()
        return None

    async def main() -> list[str]:
        relay = newest_in_thread(produce, release=release)
        first = await anext(relay)
        first_seen.set()
        return [first] + [item async for item in relay]

    assert asyncio.run(main()) == ["The answer", "The answer is 42.", "The answer is 42. Done."]


def test_items_wake_the_loop_with_no_task_and_no_timer_of_their_own() -> None:
    """Issue 23: `asyncio.wait_for` per item and every 100 ms made a task, a timer and a cancel each time."""

    async def main() -> tuple[int, int, list[int]]:
        loop = asyncio.get_running_loop()
        timers = []
        call_later = loop.call_later
        loop.call_later = lambda *args, **kwargs: timers.append(args) or call_later(*args, **kwargs)  # type: ignore[method-assign]
        asked = threading.Event()

        def produce() -> Iterator[int]:
            for n in range(20):
                yield n
                asked.wait(5)  # one item per turn of the loop
                asked.clear()
                time.sleep(0.01)  # the model is slow: the loop waits through a quiet spell

        seen, tasks = [], 0
        async for item in newest_in_thread(produce, release=lambda: None):  # pacing, idle
            seen.append(item)
            tasks = max(tasks, len(asyncio.all_tasks()))
            asked.set()
        return len(timers), tasks, seen

    timers, tasks, seen = asyncio.run(main())
    assert seen == list(range(20)) and timers == 0 and tasks == 1
