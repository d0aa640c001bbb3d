"""relay: a blocking iterator read in its own thread and awaited from asyncio code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from chat_backend.relay import newest_in_thread


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
    assert finished.wait(2)


def test_while_the_producer_is_quiet_the_loop_asks_for_what_it_holds_back() -> None:
    first_seen, paused, resume = threading.Event(), threading.Event(), threading.Event()
    held = ["The answer is 42."]

    def produce() -> Iterator[str]:
        yield "The answer"
        first_seen.wait(5)
        paused.set()
        resume.wait(5)  # the model pauses; " is 42." already arrived but the pacer holds it back
        yield "The answer is 42. Done."

    def on_quiet() -> str | None:
        if not paused.is_set() or not held:
            return None
        resume.set()  # the held-back text went out during the pause: let the stream go on
        return held.pop()

    async def main() -> list[str]:
        relay = newest_in_thread(produce, quiet=0.01, on_quiet=on_quiet)
        first = await anext(relay)
        first_seen.set()
        return [first] + [item async for item in relay]

    assert asyncio.run(main()) == ["The answer", "The answer is 42.", "The answer is 42. Done."]
