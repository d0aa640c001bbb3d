"""The launched app through Gradio's own API (gradio_client), against the stand-in API."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import gradio.utils
import pytest
from gradio_client import Client

import app
from chat_backend.visitor_settings import DEFAULT_MAX_TOKENS
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import DEFAULTS, SERVER_KEY, app_on, chat, gradio_client, notices
from tests.raw_queue import raw_chat


@pytest.fixture
def client(live_app: AppProcess) -> Iterator[Client]:
    """A fresh API session: its own conversation history on the server."""
    yield gradio_client(live_app.url)


def test_reply_streams_in_growing_updates_and_ends_with_facts(client: Client, app_api: FakeAPI) -> None:
    reply = " ".join(f"word{i}" for i in range(30))
    app_api.script(Reply(text=reply, delay=0.03))
    outputs, final = chat(client, "Hello")
    partial = [o for o in outputs if isinstance(o, str)]
    assert len(partial) >= 3 and all(reply.startswith(p) for p in partial)
    assert len(outputs) < 30  # coalesced: fewer updates than tokens
    assert final[0]["content"] == reply
    [facts] = notices(final)
    assert "tokens" in facts["metadata"]["title"] and "first token" in facts["metadata"]["title"]
    assert app_api.chat_requests()[0].headers["Authorization"] == f"Bearer {SERVER_KEY}"


def test_history_is_sent_back_without_notices(client: Client, app_api: FakeAPI) -> None:
    app_api.script(Reply(text="Paris."), Reply(text="About 2.1 million."))
    chat(client, "Capital of France?")
    chat(client, "Population?")
    second = app_api.chat_requests()[1].body["messages"]
    assert second == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Population?"},
    ]


def test_settings_reach_the_request_body(client: Client, app_api: FakeAPI) -> None:
    chat(
        client,
        "Hi",
        model="MiniMax-Text-01",
        system_prompt="Be terse.",
        temperature=0.3,
        top_p=0.5,
        max_tokens=99,
        presence_penalty=0.4,
        seed=7,
    )
    body = app_api.chat_requests()[0].body
    assert body["model"] == "MiniMax-Text-01" and body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["presence_penalty"], body["seed"]) == (
        0.3,
        0.5,
        99,
        0.4,
        7,
    )
    assert "frequency_penalty" not in body


def test_an_upstream_error_is_a_notice_and_the_next_message_works(client: Client, app_api: FakeAPI) -> None:
    app_api.script(Reply(status=401))
    _, failed = chat(client, "First")
    [notice] = notices(failed)
    assert "key was rejected" in notice["content"] and "Request id" in notice["content"]
    assert notice["metadata"]["title"].endswith("API key rejected")
    _, worked = chat(client, "Second")
    assert worked[0]["content"] == "Hello from the stand-in."
    sent = app_api.chat_requests()[-1].body["messages"]
    assert [m["content"] for m in sent[1:]] == ["Second"]  # the failed turn is not sent again


def test_a_cut_stream_keeps_the_partial_reply_before_the_notice(client: Client, app_api: FakeAPI) -> None:
    app_api.script(Reply(text="one two three four five six", drop_after=3))
    _, final = chat(client, "Count")
    assert final[0]["content"].startswith("one two") and not notices(final[:1])
    assert "cut" in notices(final)[0]["content"]


def test_out_of_range_setting_is_explained_before_sending(client: Client, app_api: FakeAPI) -> None:
    _, final = chat(client, "Hi", model="MiniMax-Text-01", temperature=1.5)
    assert "between 0 and 1" in notices(final)[0]["content"]
    assert app_api.chat_requests() == []


def test_a_visitor_key_is_used_instead_of_the_servers(client: Client, app_api: FakeAPI) -> None:
    chat(client, "Hi", user_key="visitor-key-123")
    assert app_api.chat_requests()[0].headers["Authorization"] == "Bearer visitor-key-123"


def test_without_any_key_the_first_message_says_how_to_set_one(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, AIMLAPI_KEY="").start()
    try:
        _, final = chat(gradio_client(app.url), "Hello?")
    finally:
        app.stop()
    [notice] = notices(final)
    assert all(way in notice["content"] for way in ("AIMLAPI_KEY", ".env", "Secret", "Settings"))
    assert notice["metadata"]["title"].endswith("No API key")


def test_a_reply_reads_the_api_once_per_update_not_once_per_token(
    shared_api: FakeAPI, tmp_path: Path, socket_reads: list[int | None]
) -> None:
    """Per-thread CPU showed the reply threads at over half of the app's CPU in a burst: they read every token as
    it came (about 100 µs of system calls each), though the page gets a few updates a second. The reply now leaves
    the API's stream in the socket until its next update is due, and reads it then (`Call._pace_socket_reads`)."""
    words = [f"w{i}" for i in range(40)]
    app = app_on(shared_api, tmp_path, STREAM_UPDATE_BUDGET="5").start()  # one reply: 5 updates a second
    try:
        shared_api.reset()
        shared_api.script(Reply(text=" ".join(words), delay=0.02))  # 0.8 s of tokens
        visitor = gradio_client(app.url)
        socket_reads.clear()
        _, final = chat(visitor, "Hi")
    finally:
        app.stop()
    assert final[0]["content"] == " ".join(words)
    # about 10 at five updates a second over 0.8 s; 44 to 48 when every token is read as it comes
    assert len(socket_reads) < len(words) / 2, f"{len(socket_reads)} reads of the API's socket for {len(words)} tokens"


def test_a_pasted_key_is_cleaned_or_refused_with_a_reason(client: Client, app_api: FakeAPI) -> None:
    chat(client, "Hi", user_key="visitor-key-123\u200b")
    assert app_api.chat_requests()[0].headers["Authorization"] == "Bearer visitor-key-123"
    for _ in range(2):  # sending again gets the same clear answer, not a server error
        _, final = chat(client, "Hi", user_key="visitor\u2013key")
        [notice] = notices(final)
        assert "en dash" in notice["content"] and notice["metadata"]["title"].endswith("API key not usable")
    assert len(app_api.chat_requests()) == 1


def test_an_empty_max_tokens_means_the_default(client: Client, app_api: FakeAPI) -> None:
    chat(client, "Hi", max_tokens=None)
    assert app_api.chat_requests()[0].body["max_tokens"] == DEFAULT_MAX_TOKENS


def test_text_before_a_pause_is_shown_during_the_pause(client: Client, app_api: FakeAPI) -> None:
    app_api.script(Reply(chunks=["The answer", " is 42.", " Done."], stall_after=2))  # silent until release()
    job = client.submit({"text": "Hi", "files": []}, *DEFAULTS.values(), api_name="/chat")
    deadline = time.monotonic() + 10
    while not any("is 42." in str(reply) for reply, _ in job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling what the client has received so far
    shown = [reply for reply, _ in job.outputs()]
    app_api.release()
    final, _ = job.result(timeout=30)
    assert "The answer is 42." in shown, shown
    assert final[0]["content"] == "The answer is 42. Done."


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


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed here")
def test_gradios_matplotlib_switch_around_each_event_searches_no_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found with py-spy: 6% of the app's CPU in a burst of 64 chats went to Gradio's `import matplotlib`, which
    fails (it is not installed) before and after every event, and searches every folder of sys.path each time."""
    searched: list[str] = []
    find_spec = importlib.machinery.PathFinder.find_spec
    monkeypatch.setattr(
        importlib.machinery.PathFinder,
        "find_spec",
        classmethod(lambda cls, name, *args: searched.append(name) or find_spec(name, *args)),
    )
    try:
        app.fail_fast_without_matplotlib()  # as `app.blocks` does (it searches once)
        searched.clear()
        with gradio.utils.MatplotlibBackendMananger():
            pass
    finally:
        if "matplotlib" in sys.modules and sys.modules["matplotlib"] is None:
            del sys.modules["matplotlib"]
    assert "matplotlib" not in searched
