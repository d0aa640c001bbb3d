"""The daily budget for the server's key: cost figures, the ledger in the Store, and the launched app's notice."""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from chat_backend.budget import BudgetExhausted, DailyBudget, cost_of, host_pays
from chat_backend.config import Settings
from chat_backend.store import RedisStore, SQLiteStore, StoreUnavailable
from chat_backend.stream import ChatResult, Usage
from tests.app_process import AppProcess, make_app
from tests.fake_api import FakeAPI
from tests.raw_queue import raw_chat
from tests.redis_server import RedisServer


def check(budget: DailyBudget) -> None:
    """`DailyBudget.check` awaited as the event loop does."""
    asyncio.run(budget.check())


DAY = 86_400.0
NOON = 20_000 * DAY + DAY / 2  # a fixed UTC noon

RESULT = ChatResult(
    text="x" * 30,
    finish_reason="stop",
    usage=Usage(prompt_tokens=1000, completion_tokens=2000, total_tokens=3000),
    cost_usd=0.0625,
    credits_used=None,
    model="MiniMax-Text-01",
    client_request_id="r",
    inference_id=None,
    time_to_first_token=None,
    duration=0.0,
    dropped_messages=0,
)


def test_the_cost_is_the_apis_figure_else_an_estimate_marked_as_such() -> None:
    spend = cost_of(RESULT, 0)
    assert (spend.usd, spend.estimated) == (0.0625, False)
    for odd in (None, math.nan, math.inf, -1.0):
        estimate = cost_of(replace(RESULT, cost_usd=odd), 0)
        assert estimate.estimated and estimate.usd == pytest.approx((1000 * 0.2 + 2000 * 1.1) / 1e6)
    stopped = cost_of(replace(RESULT, cost_usd=None, usage=None, model="some/unlisted"), prompt_chars=300)
    assert stopped.estimated and stopped.usd == pytest.approx((100 * 1.0 + 10 * 5.0) / 1e6)
    thinking = replace(RESULT, cost_usd=None, usage=None, model="some/unlisted", thought="y" * 60)
    assert cost_of(thinking, prompt_chars=300).usd == pytest.approx((100 * 1.0 + 30 * 5.0) / 1e6)  # stopped mid-thought


def test_only_calls_with_the_servers_key_count() -> None:
    server = Settings(api_key="server-key")
    assert host_pays("", server) and host_pays(None, server) and host_pays("  ", server)
    assert not host_pays("visitor-key", server)
    assert not host_pays("", Settings(api_key=None))


def test_the_budget_refuses_once_spent_and_resets_at_midnight_utc(tmp_path: Path) -> None:
    now = [NOON]
    budget = DailyBudget(0.125, SQLiteStore(tmp_path / "s.sqlite3"), clock=lambda: now[0])
    check(budget)
    budget.record(RESULT, 0)
    check(budget)
    budget.record(RESULT, 0)
    with pytest.raises(BudgetExhausted) as refused:
        check(budget)
    notice = refused.value.user_message
    assert "budget for today is used up" in notice and "00:00 UTC (in 12 h 0 min)" in notice
    assert "own AI/ML API key in Settings" in notice
    assert budget.today() == (0.125, 0.125)
    now[0] += DAY / 2
    check(budget)
    assert budget.today() == (0.0, 0.125)


def test_replicas_share_one_budget_through_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        one, two = (DailyBudget(0.125, RedisStore(server.url), clock=lambda: NOON) for _ in range(2))
        one.record(RESULT, 0)
        check(two)
        two.record(RESULT, 0)
        with pytest.raises(BudgetExhausted):
            check(one)
        assert one.today() == two.today() == (0.125, 0.125)
    finally:
        server.stop()


def test_a_log_line_as_spend_crosses_each_tenth(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    budget = DailyBudget(1.0, SQLiteStore(tmp_path / "s.sqlite3"), clock=lambda: NOON)
    with caplog.at_level(logging.INFO, logger="chat_backend.budget"):
        for _ in range(16):
            budget.record(RESULT, 0)  # 1/16 of the budget each
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0] == "Daily budget: $0.1250 of $1.00 spent today (12%)"
    assert lines[-1].endswith("(100%)")


class FlakyStore(SQLiteStore):
    """A real SQLite store that can be told to fail, as a full disk or a lost Redis would."""

    down = False

    def get(self, namespace: str, key: str) -> bytes | None:
        if self.down:
            raise StoreUnavailable("down")
        return super().get(namespace, key)

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float:
        if self.down:
            raise StoreUnavailable("down")
        return super().add(namespace, key, amount, ttl)


def test_a_failing_store_keeps_serving_counts_in_memory_and_catches_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(tmp_path / "s.sqlite3")
    budget = DailyBudget(0.25, store, clock=lambda: NOON)
    budget.record(RESULT, 0)
    store.down = True
    with caplog.at_level(logging.WARNING, logger="chat_backend.budget"):
        check(budget)
        budget.record(RESULT, 0)
        budget.record(RESULT, 0)
        check(budget)
        budget.record(RESULT, 0)
        with pytest.raises(BudgetExhausted):  # this process still stops at the budget
            check(budget)
    assert len(caplog.records) == 1 and "counting spend in this process only" in caplog.records[0].getMessage()
    store.down = False
    budget.record(RESULT, 0)
    assert float(store.get("budget", "2024-10-04") or 0) == pytest.approx(5 * 0.0625)


class HangingStore(SQLiteStore):
    """A real SQLite store whose reads (and, with `hang_writes`, writes) hang until `released`, as a Redis that
    accepts connections and never answers does."""

    def __init__(self, path: Path, hang_writes: bool = False) -> None:
        super().__init__(path)
        self.released, self.reads, self.writes, self.hang_writes = threading.Event(), 0, 0, hang_writes

    def get(self, namespace: str, key: str) -> bytes | None:
        self.reads += 1
        self.released.wait(30)
        return super().get(namespace, key)

    def add(self, namespace: str, key: str, amount: float, ttl: float | None = None) -> float:
        self.writes += 1
        if self.hang_writes:
            self.released.wait(30)
        return super().add(namespace, key, amount, ttl)


def test_a_hanging_ledger_is_waited_on_briefly_and_then_left_alone(tmp_path: Path) -> None:
    store = HangingStore(tmp_path / "s.sqlite3")
    budget = DailyBudget(0.125, store, clock=lambda: NOON)
    budget.record(RESULT, 0)
    check(budget)  # the read hangs: the last figure written (half the budget) decides
    budget.record(RESULT, 0)
    with pytest.raises(BudgetExhausted):
        check(budget)
    assert store.reads == 1 and not store.released.is_set()  # returned while the read still hung, asked once
    store.released.set()


def test_a_hanging_ledger_holds_up_no_reply_and_loses_no_spend(tmp_path: Path) -> None:
    store = HangingStore(tmp_path / "s.sqlite3", hang_writes=True)
    budget = DailyBudget(0.125, store, clock=lambda: NOON)
    budget.record(RESULT, 0)  # returns (after a second) while its write still hangs
    budget.record(RESULT, 0)  # one write out at a time: this one waits for the next
    assert store.writes == 1 and not store.released.is_set()
    with pytest.raises(BudgetExhausted):  # both count in this process meanwhile
        check(budget)
    store.released.set()


def _spend_until_refused(path: str, budget_usd: float, cost: float, count_file: str) -> None:
    budget, replies = DailyBudget(budget_usd, SQLiteStore(Path(path))), 0
    for _ in range(1000):
        try:
            check(budget)
        except BudgetExhausted:
            break
        budget.record(replace(RESULT, cost_usd=cost), 0)  # one reply in flight between check and record
        replies += 1
    Path(count_file).write_text(str(replies))


def test_two_processes_sharing_one_ledger_overspend_by_at_most_one_reply_each(tmp_path: Path) -> None:
    path, budget_usd, cost = str(tmp_path / "shared.sqlite3"), 1.0, 0.0078125  # 128 replies' worth, exact in binary
    context = multiprocessing.get_context("spawn")
    counts = [tmp_path / f"replies-{n}" for n in range(2)]
    workers = [
        context.Process(target=_spend_until_refused, args=(path, budget_usd, cost, str(counts[n]))) for n in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    replies = sum(int(count.read_text()) for count in counts)
    spent = DailyBudget(budget_usd, SQLiteStore(Path(path))).spent_today()
    assert spent == replies * cost  # every reply counted, none lost to a concurrent update
    assert budget_usd <= spent <= budget_usd + 2 * cost


def test_the_launched_app_stops_at_the_budget_keeps_it_over_a_restart_and_serves_visitor_keys(
    shared_api: FakeAPI, tmp_path: Path
) -> None:
    """The stand-in reports usd_spent (about $0.00001 a reply); the budget is a few replies' worth."""
    shared_api.reset()

    def start() -> AppProcess:
        return make_app(
            tmp_path / "app.log",
            AIMLAPI_BASE_URL=shared_api.base_url,
            AIMLAPI_KEY="host-key",
            DAILY_BUDGET_USD="0.00004",
        ).start()

    app = start()
    try:
        answers = [raw_chat(app.url, f"spend {n}") for n in range(8)]
        visitor = raw_chat(app.url, "my own key", user_key="visitor-own-key")
    finally:
        app.stop()
    refused = [n for n, answer in enumerate(answers) if "budget for today is used up" in answer]
    assert 1 < refused[0] < 7 and refused == list(range(refused[0], 8))
    assert "00:00 UTC" in answers[-1] and "your own AI/ML API key in Settings" in answers[-1]
    assert "Hello from the stand-in." in visitor
    sent = shared_api.chat_requests()
    assert len(sent) == refused[0] + 1 and sent[-1].headers["Authorization"] == "Bearer visitor-own-key"
    assert "Daily budget: $" in app.logs()

    app = start()  # same DATA_DIR: the day's spend is still there
    try:
        assert "budget for today is used up" in raw_chat(app.url, "after a restart")
    finally:
        app.stop()
    assert len(shared_api.chat_requests()) == refused[0] + 1
