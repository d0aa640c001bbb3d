"""The daily budget charges nothing for calls the API refused: reproductions of reported defects (each failed
before its fix), beside test_budget.py."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from chat_backend import errors
from chat_backend.budget import DailyBudget
from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.metrics import REGISTRY
from chat_backend.store import SQLiteStore
from chat_backend.visitor_settings import ChatSettings
from tests.fake_api import FakeAPI, Reply
from tests.helpers import app_on, wait_for
from tests.raw_queue import raw_chat


def test_replies_the_api_refused_cost_nothing_against_the_daily_budget(shared_api: FakeAPI, tmp_path: Path) -> None:
    """A 503 (after its retries) or a 401 is not billed, so it must not use up the day's budget: an outage of a few
    minutes must not lock the site for the rest of the day."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path, DAILY_BUDGET_USD="0.01", AIMLAPI_MAX_RETRIES="0").start()
    try:
        shared_api.default = Reply(status=503)
        try:
            long_message = "word " * 18_000  # 90,000 characters: an estimate of about $0.006 per failed reply
            failures = [raw_chat(app.url, f"outage {n} {long_message}") for n in range(3)]
        finally:
            shared_api.default = Reply()
        after = raw_chat(app.url, "the API is back")
    finally:
        app.stop()
    assert all("budget for today is used up" not in answer for answer in failures[:2])
    assert "budget for today is used up" not in after, "failed replies that cost nothing used up the budget"
    assert "Hello from the stand-in." in after


def test_a_reply_stopped_during_a_back_off_costs_nothing(fake_api: FakeAPI, tmp_path: Path) -> None:
    """The only answer so far was a 429, which is not billed, so the daily budget must not be charged an estimate."""
    fake_api.script(Reply(status=429, headers={"Retry-After": "3"}), Reply(text="late"))
    retries = REGISTRY.get_sample_value("chat_upstream_retries_total") or 0.0
    with ChatClient(Settings(api_key="k", base_url=fake_api.base_url, retry_budget=10)) as client:
        stream = client.stream_chat([{"role": "user", "content": "hi " * 3000}], ChatSettings(model="MiniMax-Text-01"))

        def read() -> None:
            with contextlib.suppress(errors.ChatError):
                list(stream)

        reader = threading.Thread(target=read)
        reader.start()
        # the client counts a retry as its 3 s back-off begins
        assert wait_for(lambda: (REGISTRY.get_sample_value("chat_upstream_retries_total") or 0.0) > retries, 10)
        stream.close()
        reader.join(5)
    assert not reader.is_alive() and stream.result is not None
    budget = DailyBudget(1.0, SQLiteStore(tmp_path / "budget.sqlite3"))
    assert budget.record(stream.result, 9000) is None, "a stopped reply whose only answer was a 429 was charged"
    assert len(fake_api.chat_requests()) == 1
