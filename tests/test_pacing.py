"""pacing: updates are coalesced by a clock, the last value always gets through, and the budget adapts."""

from __future__ import annotations

import threading

from chat_backend.pacing import (
    MAX_BROWSER_INTERVAL,
    MIN_INTERVAL,
    Pacer,
    UpdateBudget,
    browser_interval,
    weight_for,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(arrivals: list[float], interval: float, flush: bool = True) -> list[int]:
    """Feed one-character pieces arriving at the given times; return how many pieces each yielded text holds
    minus one (the index of the newest piece in it), checking every yield is the whole text so far."""
    clock = FakeClock()

    def pieces():
        for index, at in enumerate(arrivals):
            clock.now = at
            yield chr(ord("a") + index % 26)

    texts = list(Pacer(lambda: interval, clock).updates(pieces(), flush=flush))
    expected = "".join(chr(ord("a") + i % 26) for i in range(len(arrivals)))
    assert all(expected.startswith(text) for text in texts)
    return [len(text) - 1 for text in texts]


def test_fast_tokens_are_coalesced_and_the_last_is_kept() -> None:
    arrivals = [i * 0.01 for i in range(100)]  # 100 tokens/s for one second
    sent = run(arrivals, 0.05)
    assert sent[0] == 0 and sent[-1] == 99
    assert 18 <= len(sent) <= 22


def test_without_flush_the_held_back_text_is_left_to_the_caller() -> None:
    sent = run([i * 0.01 for i in range(100)], 0.05, flush=False)
    assert sent[0] == 0 and sent[-1] < 99


def test_slow_tokens_all_pass_straight_through() -> None:
    assert run([0.0, 0.2, 0.4, 0.6], 0.05) == [0, 1, 2, 3]


def test_a_zero_interval_passes_everything() -> None:
    assert run([i * 0.001 for i in range(5)], 0.0) == [0, 1, 2, 3, 4]


def test_empty_stream_yields_nothing() -> None:
    assert run([], 0.05) == []


def test_a_huge_interval_sends_only_the_first_and_the_last() -> None:
    assert run([i * 0.01 for i in range(50)], 100.0) == [0, 49]


def test_the_interval_grows_with_the_load_and_recovers() -> None:
    budget = UpdateBudget(per_second=100)
    assert budget.interval() == MIN_INTERVAL
    with budget.share(1.0) as interval:
        assert interval() == MIN_INTERVAL
        shares = [budget.share(1.0) for _ in range(63)]
        for share in shares:
            share.__enter__()
        assert interval() == 64 / 100
        for share in shares:
            share.__exit__(None, None, None)
        assert interval() == MIN_INTERVAL
    assert budget._weight == 0


def test_long_conversations_weigh_more() -> None:
    assert weight_for(0) == 1.0 and weight_for(400_000) > 5 * weight_for(0)


def test_sharing_is_thread_safe() -> None:
    budget = UpdateBudget(per_second=10)

    def churn() -> None:
        for _ in range(2_000):
            with budget.share(0.5):
                pass

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert budget._weight == 0


def test_long_messages_update_less_often_but_still_several_times_a_second() -> None:
    assert browser_interval(200) < MIN_INTERVAL  # short replies stay at 20 updates a second
    assert browser_interval(5_000) > 3 * MIN_INTERVAL
    assert browser_interval(10**7) == MAX_BROWSER_INTERVAL <= 0.5
    arrivals = [i * 0.01 for i in range(2_000)]  # 2,000 tokens at 100 a second, ~6 characters each
    clock = FakeClock()

    def pieces():
        for at in arrivals:
            clock.now = at
            yield "token "

    sent = list(Pacer(lambda: MIN_INTERVAL, clock).updates(pieces()))
    assert 40 <= len(sent) <= 120  # 20 a second would be 400
    assert sent[-1] == "token " * 2_000


def test_held_back_text_goes_out_when_the_stream_goes_quiet_and_counts_as_an_update() -> None:
    clock = FakeClock()
    pacer = Pacer(lambda: 0.05, clock)
    assert pacer.add("The answer") == "The answer"
    clock.now = 0.01
    assert pacer.add(" is 42.") is None
    clock.now = 0.03
    assert pacer.due() is None
    clock.now = 0.05
    assert pacer.due() == "The answer is 42."
    assert pacer.due() is None and pacer.flush() is None
    clock.now = 0.06
    assert pacer.add(" Done.") is None  # the update sent while quiet started a new interval
    assert pacer.flush() == "The answer is 42. Done."
