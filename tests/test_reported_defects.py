"""Defects an adversarial review reproduced (Stop during a back-off, billing refused calls, refusals counted
against the rate, split surrogates, the fallback's wording, notices' full stops): each test failed before its fix."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from gradio_client import Client

from chat_backend import errors
from chat_backend.budget import DailyBudget
from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.store import SQLiteStore
from chat_backend.visitor_settings import ChatSettings
from tests.app_process import AppProcess
from tests.conftest import app_on
from tests.fake_api import FakeAPI, Reply
from tests.raw_queue import raw_chat
from tests.test_app_api import DEFAULTS
from tests.test_security import run


@pytest.fixture(scope="module")
def unretried_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """No retries, so a refusal is final at once, and a daily budget that refused calls must not touch."""
    app = app_on(shared_api, tmp_path_factory.mktemp("unretried"), DAILY_BUDGET_USD="0.01", AIMLAPI_MAX_RETRIES="0")
    yield app.start()
    app.stop()


def test_replies_the_api_refused_cost_nothing_against_the_daily_budget(
    shared_api: FakeAPI, unretried_app: AppProcess
) -> None:
    """A 503 (after its retries) or a 401 is not billed, so it must not use up the day's budget: an outage of a few
    minutes must not lock the site for the rest of the day."""

    shared_api.reset()
    shared_api.default = Reply(status=503)
    try:
        long_message = "word " * 18_000  # 90,000 characters: an estimate of about $0.006 per failed reply
        failures = [raw_chat(unretried_app.url, f"outage {n} {long_message}") for n in range(3)]
    finally:
        shared_api.default = Reply()
    after = raw_chat(unretried_app.url, "the API is back")
    assert all("budget for today is used up" not in answer for answer in failures[:2])
    assert "budget for today is used up" not in after, "failed replies that cost nothing used up the budget"
    assert "Hello from the stand-in." in after


def test_a_message_the_app_refuses_before_sending_does_not_count_against_the_session_rate(
    shared_api: FakeAPI, tmp_path: Path
) -> None:
    """README: "A refused message never counts against the sender's rate." A temperature above the model's
    maximum is refused by the app (nothing is sent), yet it used up the session's messages."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path, RATE_LIMIT_PER_SESSION="2").start()
    try:
        client = Client(app.url, verbose=False)
        settings = {**DEFAULTS, "model": "MiniMax-Text-01", "temperature": 1.5}
        refused = [
            client.submit({"text": f"too hot {n}", "files": []}, *settings.values(), api_name="/chat").result(
                timeout=30
            )
            for n in range(2)
        ]
        fine = {**DEFAULTS, "model": "MiniMax-Text-01", "temperature": 0.5}
        after, _ = client.submit({"text": "cooler now", "files": []}, *fine.values(), api_name="/chat").result(
            timeout=30
        )
    finally:
        app.stop()
    assert all("Temperature" in str(answer) or "temperature" in str(answer) for answer, _ in refused)
    assert not any("too hot" in str(r.body) for r in shared_api.chat_requests())  # nothing sent for those
    assert "Hello from the stand-in." in str(after), f"refused messages used up the rate: {after}"


def test_the_vendors_words_end_their_sentence_before_the_advice_in_both_languages(fake_api: FakeAPI) -> None:
    """A 429 or 500 notice quotes the API and then advises: "It said: “Too Many Requests” Wait a minute" ran the
    quote into the next sentence (in Chinese: “Too Many Requests”请等待…, with no full stop at all)."""

    settings = Settings(api_key="k", base_url=fake_api.base_url, max_retries=0)
    fake_api.script(Reply(status=429), Reply(status=500))
    with ChatClient(settings) as client:
        for _ in range(2):
            with pytest.raises(errors.ChatError) as caught:
                client.complete([{"role": "user", "content": "hi"}], ChatSettings(model="MiniMax-Text-01"))
            english, chinese = caught.value.message("en"), caught.value.message("zh")
            assert "”." in english and "” " not in english.replace("”.", ""), english
            assert "”。" in chinese, chinese


def test_a_saved_conversations_missing_file_is_named_in_the_visitors_language(live_app) -> None:  # type: ignore[no-untyped-def]
    """Reproduced in Chromium with locale zh-CN: a saved chat whose upload is gone shows
    "[attachment notes.txt is no longer available]" in English on an otherwise Chinese page."""

    uploaded = requests.post(
        f"{live_app.url}gradio_api/upload", files={"files": ("notes.txt", b"tide tables")}, timeout=30
    ).json()[0]
    Path(uploaded).unlink()  # the cache was emptied since (CACHE_CLEAR_MINUTES, a restart)
    conversation = [
        {"role": "user", "content": [{"type": "file", "file": {"path": uploaded, "orig_name": "notes.txt"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
    ]
    reply = run(
        live_app, "_load_conversation", [0, [conversation]], session="zh-visitor", headers={"Accept-Language": "zh-CN"}
    )
    assert reply.ok, reply.text[:300]
    assert "notes.txt" in reply.text and "no longer available" not in reply.text, reply.text[:300]


def test_a_character_split_between_two_events_as_json_escapes_does_not_break_the_page(
    live_app: AppProcess, app_api: FakeAPI
) -> None:
    """A gateway that cuts UTF-16 strings (JavaScript) may send an emoji's surrogate halves in two events. Gradio
    then fails to encode the update ("str is not valid UTF-8: surrogates not allowed") and the visitor's event
    stream ends: no reply, no notice."""

    app_api.script(
        Reply(
            raw_stream=b'data: {"choices":[{"delta":{"content":"smile \\ud83d"}}]}\n\n'
            b'data: {"choices":[{"delta":{"content":"\\ude00 and a lone \\udc00 half"}}]}\n\n'
            b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
        )
    )
    answer = raw_chat(live_app.url, "an emoji please")

    assert json.loads(answer)["data"][0][0]["content"] == "smile \U0001f600 and a lone \ufffd half", answer


def test_a_fallback_call_that_fails_is_not_announced_as_having_answered(
    shared_api: FakeAPI, unretried_app: AppProcess
) -> None:
    """The chosen model is refused, the fallback's own call fails (a 500): the chat said "🔁 Answered by
    MiniMax-Text-01 … so MiniMax-Text-01 answered" right above the error notice, though nothing answered."""
    shared_api.reset()
    shared_api.deprecated_models = frozenset({"abab6.5s-chat"})  # the app's catalogue still lists it
    shared_api.script(Reply(status=500))
    try:
        final, _ = (
            Client(unretried_app.url, verbose=False)
            .submit({"text": "fallback fails", "files": []}, *DEFAULTS.values(), api_name="/chat")
            .result(timeout=30)
        )
    finally:
        shared_api.deprecated_models = frozenset()
    assert [r.body["model"] for r in shared_api.chat_requests()] == ["abab6.5s-chat", "MiniMax-Text-01"]
    titles = [m["metadata"]["title"] for m in final if m.get("metadata")]
    assert any(title.startswith("⚠️") for title in titles), final
    assert not any(
        "answered" in m["content"] or "Answered" in (m.get("metadata") or {}).get("title", "") for m in final
    ), final


def test_a_reply_stopped_during_a_back_off_costs_nothing(fake_api: FakeAPI, tmp_path: Path) -> None:
    """The only answer so far was a 429, which is not billed, so the daily budget must not be charged an estimate."""

    fake_api.script(Reply(status=429, headers={"Retry-After": "3"}), Reply(text="late"))
    with ChatClient(Settings(api_key="k", base_url=fake_api.base_url, retry_budget=10)) as client:
        stream = client.stream_chat([{"role": "user", "content": "hi " * 3000}], ChatSettings(model="MiniMax-Text-01"))

        def read() -> None:
            with contextlib.suppress(errors.ChatError):
                list(stream)

        reader = threading.Thread(target=read)
        reader.start()
        fake_api.wait_for_requests(1)
        time.sleep(0.3)  # into the 3 s back-off: nothing marks the moment the client starts waiting
        stream.close()
        reader.join(5)
    assert not reader.is_alive() and stream.result is not None
    budget = DailyBudget(1.0, SQLiteStore(tmp_path / "budget.sqlite3"))
    assert budget.record(stream.result, 9000) is None, "a stopped reply whose only answer was a 429 was charged"
    assert len(fake_api.chat_requests()) == 1
