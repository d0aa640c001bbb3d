"""Stop ends a reply at once and closes the upstream request, whatever the stream is doing, and frees the
upstream slot for the next visitor: through the launched app and Gradio's own cancel (gradio_client)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gradio_client import Client

from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import DEFAULTS, app_on, chat

PARTIAL = "one two three four five six seven eight"


@pytest.fixture(scope="module")
def one_slot_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app with room for one upstream call at a time and a read timeout far beyond the test's patience."""
    folder = tmp_path_factory.mktemp("stop")
    app = app_on(shared_api, folder, AIMLAPI_READ_TIMEOUT="60", MAX_UPSTREAM_CALLS="1").start()
    yield app
    app.stop()


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)  # polling the client's view of the job: it offers no event to wait on
    return False


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        (Reply(text="never sent", headers_after=40), None),
        (Reply(text="never sent", ttft=40), None),
        (Reply(text=PARTIAL, stall_after=3), "one"),
    ],
    ids=["silent-before-the-headers", "silent-before-the-first-token", "stalled-mid-reply"],
)
def test_stop_while_the_model_is_silent_closes_upstream_within_a_second_and_frees_the_slot(
    one_slot_app: AppProcess, shared_api: FakeAPI, reply: Reply, shown: str | None
) -> None:
    shared_api.reset()
    shared_api.script_for("stop me", reply)
    job = Client(one_slot_app.url, verbose=False).submit(
        {"text": "stop me", "files": []}, *DEFAULTS.values(), api_name="/chat"
    )
    shared_api.wait_for_message("stop me")
    if shown:
        assert wait_for(lambda: any(shown in str(output) for output in job.outputs()), 10)
    [request] = shared_api.chat_requests()
    assert not request.client_disconnected.wait(0.3)  # silent, not gone
    started = time.monotonic()
    job.cancel()
    assert request.client_disconnected.wait(max(0.0, 1.0 - (time.monotonic() - started))), "upstream still open"
    _, final = chat(Client(one_slot_app.url, verbose=False), "next visitor")
    assert final[0]["content"] == "Hello from the stand-in."  # the one upstream slot was given back at once


def test_stop_during_the_fallback_call_closes_it_within_a_second(one_slot_app: AppProcess, shared_api: FakeAPI) -> None:
    shared_api.reset()
    app = one_slot_app
    try:
        shared_api.deprecated_models = frozenset({"abab6.5s-chat"})  # the app's catalogue still lists it
        shared_api.script(Reply(text="never sent", ttft=40))
        job = Client(app.url, verbose=False).submit(
            {"text": "stop the fallback", "files": []}, *DEFAULTS.values(), api_name="/chat"
        )
        assert wait_for(lambda: len(shared_api.chat_requests()) == 2, 10)
        refused, fallback = shared_api.chat_requests()
        assert (refused.body["model"], fallback.body["model"]) == ("abab6.5s-chat", "MiniMax-Text-01")
        assert not fallback.client_disconnected.wait(0.3)
        started = time.monotonic()
        job.cancel()
        assert fallback.client_disconnected.wait(max(0.0, 1.0 - (time.monotonic() - started))), "upstream still open"
        shared_api.deprecated_models = frozenset()
        final, _ = (
            Client(app.url, verbose=False)
            .submit({"text": "next", "files": []}, *{**DEFAULTS, "model": "MiniMax-Text-01"}.values(), api_name="/chat")
            .result(timeout=30)
        )
    finally:
        shared_api.deprecated_models = frozenset()
    assert final[0]["content"] == "Hello from the stand-in."
