"""The page's reply step, spoken to over raw HTTP as its front end does: its inputs reach `respond` without a
thread hop each for Gradio's `preprocess` (issue 23), and whatever a script sends in their place gets a notice
that says what is wrong, never a failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio.to_thread
import pytest

from chat_backend.visitor_settings import NAMES
from tests.app_process import AppInProcess, AppProcess
from tests.fake_api import FakeAPI
from tests.helpers import app_on, chat, gradio_client
from tests.raw_queue import SETTINGS, RawSession

STAND_IN_REPLY = "Hello from the stand-in."


@pytest.fixture(scope="module")
def app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess | AppInProcess]:
    app = app_on(shared_api, tmp_path_factory.mktemp("page-reply")).start()
    yield app
    app.stop()


@pytest.fixture
def preprocess_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The components whose `preprocess` this process ran in a worker thread while the test ran (the app runs in
    this process): Gradio sends each one there on its own."""
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "__name__", "") == "preprocess":
            hops.append(type(getattr(func, "__self__", None)).__name__)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hops


def test_a_page_reply_takes_its_inputs_without_a_thread_hop_each(
    app: AppProcess | AppInProcess, shared_api: FakeAPI, preprocess_hops: list[str]
) -> None:
    """Each hop waits for the event loop, which under load was the largest part of a first token's delay (11
    inputs, 11 hops). The public API still preprocesses (its textbox's files need it), which shows the count
    sees them."""
    shared_api.reset()
    turn = RawSession(app).send({"text": "Hi", "files": []})
    assert turn is not None and turn.notices == [] and STAND_IN_REPLY in str(turn.chat)
    assert preprocess_hops == []
    replies, _ = chat(gradio_client(app.url), "Hi")
    assert STAND_IN_REPLY in str(replies[-1]) and "MultimodalTextbox" in preprocess_hops


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("temperature", "hot", "Temperature has a value of the wrong kind"),
        ("temperature", [0.5], "Temperature has a value of the wrong kind"),
        ("top_p", True, "Top-p has a value of the wrong kind"),
        ("max_tokens", 2.5, "Max tokens must be between"),
        ("max_tokens", 10**400, "Max tokens must be between"),  # larger than any float
        ("model", 5, "Model has a value of the wrong kind"),
        ("model", "abab6.5s-chat\x00", "Model has a value of the wrong kind"),  # no model's name
        ("system_prompt", {"text": "x"}, "System prompt has a value of the wrong kind"),
    ],
)
def test_a_setting_of_the_wrong_kind_gets_a_notice(
    app: AppProcess | AppInProcess, shared_api: FakeAPI, name: str, value: Any, says: str
) -> None:
    """What Gradio's `preprocess` refused or converted reaches `respond` as sent: it refuses it itself, saying
    which setting is wrong, and sends nothing."""
    shared_api.reset()
    settings = [value if field == name else default for field, default in zip(NAMES, SETTINGS, strict=True)]
    turn = RawSession(app).send({"text": "Hi", "files": []}, settings=settings)
    assert turn is not None and len(turn.notices) == 1 and says in turn.notices[0], turn
    assert shared_api.chat_requests() == []


def test_cleared_settings_mean_their_defaults(app: AppProcess | AppInProcess, shared_api: FakeAPI) -> None:
    """A cleared field arrives as None (the page's empty Number): the table's default, as before."""
    shared_api.reset()
    turn = RawSession(app).send({"text": "Hi", "files": []}, settings=[None] * len(SETTINGS))
    assert turn is not None and turn.notices == [] and STAND_IN_REPLY in str(turn.chat)
    (sent,) = shared_api.chat_requests()
    assert sent.body["max_tokens"] == 2048 and sent.body["temperature"] == 1.0


def test_an_empty_chat_is_answered_as_an_empty_message(app: AppProcess | AppInProcess, shared_api: FakeAPI) -> None:
    """The chat arrives as None when a script sends none (Gradio's `preprocess` made it []): no failure."""
    shared_api.reset()
    outputs = RawSession(app).queued("reply_in_page", [None, *SETTINGS])
    assert outputs is not None and isinstance(outputs[0], list), outputs


def test_a_lone_surrogate_is_refused_at_the_edge(app: AppProcess | AppInProcess, shared_api: FakeAPI) -> None:
    """A JSON `\\ud800` escape gives text UTF-8 cannot carry: Gradio's answer echoing it broke off the event
    stream. The request guard refuses the body (400); a message after it is answered."""
    shared_api.reset()
    assert RawSession(app).send({"text": "Hi \ud800", "files": []}) is None
    assert RawSession(app).send({"text": "Hi", "files": []}, settings=[*SETTINGS[:1], "\ud800", *SETTINGS[2:]]) is None
    assert shared_api.chat_requests() == []
    turn = RawSession(app).send({"text": "Hi \U0001f600", "files": []})  # a pair is a character, and passes
    assert turn is not None and STAND_IN_REPLY in str(turn.chat)
