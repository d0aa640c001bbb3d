"""pacing: updates are coalesced by a clock, and the last value always gets through."""

from __future__ import annotations

from chat_backend.pacing import paced


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run(arrivals: list[float], interval: float) -> list[int]:
    """Feed values 0, 1, 2… arriving at the given times; return the values passed on."""
    clock = FakeClock()

    def values():
        for index, at in enumerate(arrivals):
            clock.now = at
            yield index

    return list(paced(values(), interval, clock))


def test_fast_tokens_are_coalesced_and_the_last_is_kept() -> None:
    arrivals = [i * 0.01 for i in range(100)]  # 100 tokens/s for one second
    sent = run(arrivals, 0.05)
    assert sent[0] == 0 and sent[-1] == 99
    assert 18 <= len(sent) <= 22


def test_slow_tokens_all_pass_straight_through() -> None:
    assert run([0.0, 0.2, 0.4, 0.6], 0.05) == [0, 1, 2, 3]


def test_a_zero_interval_passes_everything() -> None:
    assert run([0.0] * 5, 0.0) == [0, 1, 2, 3, 4]


def test_empty_stream_yields_nothing() -> None:
    assert run([], 0.05) == []
