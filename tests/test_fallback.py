"""The fallback model answers when the API refuses the chosen one as retired or unknown, and only then.

Through the launched app (gradio_client) against the stand-in; rarer cases through chat_backend alone, still
over HTTP to the stand-in; the pure pieces directly. The browser side is in tests/test_browser.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gradio_client import Client

from chat_backend.catalogue import Catalogue
from chat_backend.client import ChatClient
from chat_backend.config import Settings, load_settings
from chat_backend.errors import ModelUnavailable
from chat_backend.fallback import FallbackStream, Switch, known_refused, moved_to, with_notice
from chat_backend.visitor_settings import ChatSettings
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import SERVER_KEY, app_on, chat_with_model, gradio_client, notices

OLD, NEW = "abab6.5s-chat", "MiniMax-Text-01"
UNCHANGED = {"__type__": "update"}  # the Model output when the setting stays as it is


@pytest.fixture
def client(live_app: AppProcess) -> Iterator[Client]:
    yield gradio_client(live_app.url)


def models_asked(api: FakeAPI) -> list[str]:
    return [request.body["model"] for request in api.chat_requests()]


def switch_notice(messages: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = [m for m in notices(messages) if m["metadata"]["title"].startswith("🔁")]
    return found


def test_a_retired_default_is_answered_by_the_fallback_and_the_setting_follows(
    client: Client, app_api: FakeAPI
) -> None:
    app_api.deprecated_models = frozenset({OLD})  # the app's catalogue, fetched at start, still lists it
    app_api.script(Reply(text="Answered anyway."))
    _, final, model = chat_with_model(client, "First message", model=OLD, temperature=1.5, frequency_penalty=0.5)
    assert final[0] == {"role": "assistant", "content": "Answered anyway."}
    line = switch_notice(final)["content"]
    assert f"{OLD} is retired by the API" in line and NEW in line and "Settings → Model" in line
    assert "\n" not in line
    assert not [m for m in notices(final) if m["metadata"]["title"].startswith("⚠️")]
    assert model == {"__type__": "update", "value": NEW}
    refused, answered = app_api.chat_requests()
    assert (refused.body["model"], answered.body["model"]) == (OLD, NEW)
    assert answered.body["messages"] == refused.body["messages"]  # the same message, asked again
    assert answered.body["temperature"] == 1.0 and "frequency_penalty" not in answered.body  # fitted to NEW

    _, later, model = chat_with_model(client, "Second message", model=NEW)  # what the Model box now holds
    assert models_asked(app_api) == [OLD, NEW, NEW] and model == UNCHANGED
    assert not [m for m in notices(later) if m["metadata"]["title"].startswith("🔁")]


def test_a_name_missing_from_the_live_catalogue_is_never_sent(client: Client, app_api: FakeAPI) -> None:
    _, final, model = chat_with_model(client, "Hello", model="minimax/abab-gone")
    assert models_asked(app_api) == [NEW]
    assert "minimax/abab-gone is not offered by the API" in switch_notice(final)["content"]
    assert model == {"__type__": "update", "value": NEW}


@pytest.mark.parametrize(
    ("reply", "title"),
    [
        (Reply(status=401), "API key rejected"),
        (Reply(status=429, headers={"Retry-After": "0"}), "Rate limited"),
        (Reply(status=500), "The API is having trouble"),
        (Reply(status=503), "The API is having trouble"),
        (Reply(status=400), "Request rejected"),  # a bad parameter: "Body validation error!"
        (Reply(status=404), "Nothing at that address"),  # "Not Found", naming no model: a wrong address
    ],
    ids=["401", "429", "500", "503", "400-bad-parameter", "404-not-about-the-model"],
)
def test_other_failures_never_switch_models(client: Client, app_api: FakeAPI, reply: Reply, title: str) -> None:
    app_api.default = reply  # every attempt, retries included, gets it
    _, final, model = chat_with_model(client, "Hello", model=OLD)
    [notice] = notices(final)
    assert notice["metadata"]["title"].endswith(title)
    assert set(models_asked(app_api)) == {OLD} and model == UNCHANGED


def test_a_fallback_that_is_refused_too_leaves_the_original_notice(client: Client, app_api: FakeAPI) -> None:
    app_api.deprecated_models = frozenset({OLD, NEW})
    _, final, model = chat_with_model(client, "Hello", model=OLD)
    [notice] = notices(final)
    assert notice["metadata"]["title"].endswith("Model unavailable") and OLD in notice["content"]
    assert models_asked(app_api) == [OLD, NEW] and model == UNCHANGED


def start_app(api: FakeAPI, folder: Path, **env: str) -> AppProcess:
    return app_on(api, folder, **env).start()


def test_a_model_the_live_catalogue_leaves_out_gets_no_call(fake_api: FakeAPI, tmp_path: Path) -> None:
    fake_api.deprecated_models = frozenset({OLD})  # absent from /models from the start
    app = start_app(fake_api, tmp_path)
    try:
        _, final, model = chat_with_model(gradio_client(app.url), "Hello")  # the default model
    finally:
        app.stop()
    assert models_asked(fake_api) == [NEW]
    assert final[0]["content"] == "Hello from the stand-in." and f"{OLD} is retired" in switch_notice(final)["content"]
    assert model == {"__type__": "update", "value": NEW}


def test_a_fallback_call_that_fails_is_not_announced_as_having_answered(fake_api: FakeAPI, tmp_path: Path) -> None:
    """The chosen model is refused, the fallback's own call fails (a 500): the chat said "🔁 Answered by
    MiniMax-Text-01 … so MiniMax-Text-01 answered" right above the error notice, though nothing answered."""
    fake_api.models_reply = Reply(status=503)  # the built-in list, which does not know abab7-chat: it is sent
    fake_api.script(Reply(status=500))  # for the fallback's call, and no retry of it
    app = start_app(fake_api, tmp_path, AIMLAPI_MAX_RETRIES="0")
    try:
        _, final, _ = chat_with_model(gradio_client(app.url), "fallback fails", model="abab7-chat")
    finally:
        app.stop()
    assert models_asked(fake_api) == ["abab7-chat", NEW]
    titles = [m["metadata"]["title"] for m in final if m.get("metadata")]
    assert any(title.startswith("⚠️") for title in titles), final
    assert not any(
        "answered" in m["content"] or "Answered" in (m.get("metadata") or {}).get("title", "") for m in final
    ), final


def answer(api: FakeAPI, settings: ChatSettings, fallback: str = NEW, live: bool = True) -> FallbackStream:
    """One turn through chat_backend alone (the app does the same), over HTTP to the stand-in."""
    client = ChatClient(Settings(api_key=SERVER_KEY, base_url=api.base_url, retry_budget=0.5))
    assert client.catalogue.refresh() is live
    stream = FallbackStream(client, [{"role": "user", "content": "Hello"}], settings, None, fallback)
    with stream:
        "".join(stream)
    return stream


def test_a_refusal_in_the_validation_error_shape_switches_too(fake_api: FakeAPI) -> None:
    fake_api.models_reply = Reply(status=503)  # no live catalogue: only the built-in list is known
    fake_api.refusal_status = 400
    stream = answer(fake_api, ChatSettings(model="abab7-chat"), live=False)
    assert stream.switch == Switch("abab7-chat", NEW, retired=False) and stream.text == "Hello from the stand-in."
    assert models_asked(fake_api) == ["abab7-chat", NEW]
    stream = answer(fake_api, ChatSettings(model=OLD), live=False)  # the built-in list knows it is retired
    assert stream.switch == Switch(OLD, NEW, retired=True) and models_asked(fake_api) == ["abab7-chat", NEW, NEW]


def test_an_empty_fallback_setting_keeps_todays_notice(fake_api: FakeAPI) -> None:
    fake_api.deprecated_models = frozenset({OLD})
    with pytest.raises(ModelUnavailable, match=f"{OLD} has been retired"):
        answer(fake_api, ChatSettings(model=OLD), fallback="")
    assert models_asked(fake_api) == [OLD]


def test_stopping_during_the_refused_call_starts_no_fallback_call(fake_api: FakeAPI) -> None:
    fake_api.script(Reply(status=404, ttft=0.5, body={"message": f"Model '{OLD}' is deprecated.", "statusCode": 404}))
    client = ChatClient(Settings(api_key=SERVER_KEY, base_url=fake_api.base_url))
    assert client.catalogue.refresh()
    stream = FallbackStream(client, [{"role": "user", "content": "Hello"}], ChatSettings(model=OLD), None, NEW)
    failures: list[BaseException] = []

    def read() -> None:
        try:
            "".join(stream)
        except ModelUnavailable as error:
            failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    fake_api.wait_for_message("Hello")
    stream.close()  # as Stop does, from another thread
    reader.join(5)
    assert not reader.is_alive() and models_asked(fake_api) == [OLD] and stream.switch is None
    assert len(failures) <= 1  # a stopped stream may end quietly or with the refusal, never with a fallback


# The pure pieces.


def test_the_fallback_setting_defaults_on_and_an_empty_value_turns_it_off() -> None:
    assert load_settings({}, dotenv_path=None).fallback_model == NEW
    assert load_settings({"CHAT_FALLBACK_MODEL": ""}, dotenv_path=None).fallback_model == ""
    assert load_settings({"CHAT_FALLBACK_MODEL": " minimax/m1 "}, dotenv_path=None).fallback_model == "minimax/m1"


def test_moving_settings_fits_them_to_the_new_model(fake_api: FakeAPI) -> None:
    catalogue = Catalogue(requests.Session(), fake_api.base_url, 3600)
    hot = ChatSettings.of(model=OLD, temperature=1.7, frequency_penalty=0.5, presence_penalty=0.3, seed=4)
    moved = moved_to(hot, catalogue.info(NEW))
    assert (moved.model, moved.temperature, moved.options.get("frequency_penalty")) == (NEW, 1.0, None)
    assert (moved.options["presence_penalty"], moved.options["seed"]) == (0.3, 4)
    assert moved_to(ChatSettings(model=OLD), catalogue.info(NEW)).temperature is None
    assert moved_to(hot, catalogue.info("minimax/minimax-m3")).temperature == 1.7


def test_the_catalogue_says_which_models_would_be_refused(fake_api: FakeAPI) -> None:
    catalogue = Catalogue(requests.Session(), fake_api.base_url, 3600)
    assert known_refused(catalogue, OLD) and not known_refused(catalogue, NEW)  # the built-in list
    assert not known_refused(catalogue, "someone/new-model")  # unknown, and no live list to ask yet
    assert catalogue.refresh()
    assert not known_refused(catalogue, OLD)  # the stand-in still serves it
    assert known_refused(catalogue, "someone/new-model") and not known_refused(catalogue, "minimax/text-01")
    fake_api.deprecated_models = frozenset({OLD})
    assert catalogue.refresh() and known_refused(catalogue, OLD)


def test_the_notice_goes_after_the_reply() -> None:
    switch = Switch(OLD, NEW, retired=True)
    reply, facts = {"role": "assistant", "content": "Hi"}, {"role": "assistant", "content": "", "metadata": {}}
    assert with_notice([reply, facts], None) == [reply, facts]
    placed = with_notice([reply, facts], switch)
    assert placed[0] == reply and placed[2] == facts and placed[1]["metadata"]["title"] == f"🔁 Answered by {NEW}"
    assert with_notice([facts], switch)[1] == facts


def test_a_fallback_whose_window_is_too_small_leaves_the_refusal_and_no_switch(fake_api: FakeAPI) -> None:
    """The chosen model (1M tokens) is refused; the fallback (200k) cannot take this conversation, so nothing
    is sent to it: no "Sent to" notice, no Model switch, and the chosen model's refusal is what the visitor reads."""
    fake_api.models_reply = Reply(status=503)  # the built-in list: minimax-m3 offered, so its call goes out
    fake_api.deprecated_models = frozenset({"minimax/minimax-m3"})
    client = ChatClient(Settings(api_key=SERVER_KEY, base_url=fake_api.base_url, retry_budget=0.5))
    long_talk = [{"role": "user", "content": "words " * 150_000}]  # ~300k tokens: over m2's window, under m3's
    stream = FallbackStream(client, long_talk, ChatSettings(model="minimax/minimax-m3"), None, "minimax/m2")
    with pytest.raises(ModelUnavailable, match="minimax/minimax-m3"), stream:
        "".join(stream)
    assert stream.switch is None and models_asked(fake_api) == ["minimax/minimax-m3"]
