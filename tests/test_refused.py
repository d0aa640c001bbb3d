"""Refused input is cheap: field sizes are judged before their contents, and an address whose messages keep being
refused is refused at once for a while (RATE_LIMIT_REFUSED_PER_ADDRESS), before any work."""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_backend import config
from chat_backend.config import check_key
from chat_backend.errors import BadInput, Busy, InvalidKey, InvalidSettings, MissingKey, Throttled
from chat_backend.quotas import Guard
from chat_backend.visitor_settings import MAX_KEY_CHARS, ChatSettings, defaults
from tests.app_process import AppInProcess, AppProcess, make_app
from tests.fake_api import FakeAPI
from tests.raw_queue import chat_fn_index, raw_chat

STAND_IN_REPLY = "Hello from the stand-in."
HUGE = 4_900_000  # about the largest field a 5 MB request body holds


class CountingUnicodedata:
    """`unicodedata` for chat_backend.config, counting the characters it is asked about."""

    def __init__(self) -> None:
        self.looked_at = 0

    def category(self, char: str) -> str:
        self.looked_at += 1
        return unicodedata.category(char)

    def name(self, char: str, default: Any = None) -> Any:
        return unicodedata.name(char, default)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingUnicodedata]:
    counting = CountingUnicodedata()
    monkeypatch.setattr(config, "unicodedata", counting)
    yield counting


def test_a_huge_pasted_key_is_refused_by_its_length_alone(counted: CountingUnicodedata) -> None:
    """A 4.9 MB "key" cost about a second of CPU: every character was looked up before the length was."""
    problem, _ = check_key("a" * HUGE)
    assert problem is not None and problem.key == "key_too_long" and problem.params["length"] == f"{HUGE:,}"
    assert counted.looked_at <= 4 * MAX_KEY_CHARS


KEY_LIKE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=600)
PADDING = st.sampled_from(["", " ", "\u200b", "\ufeff ", "\n"])


REPEATED = st.builds(lambda part, times: part * times, st.text(min_size=1, max_size=4), st.integers(0, 20_000))


@settings(max_examples=200, deadline=None)
@given(raw=st.text() | REPEATED | st.builds(lambda pad, key, end: pad + key + end, PADDING, KEY_LIKE, PADDING))
def test_any_pasted_key_is_judged_with_bounded_work(raw: str) -> None:
    counting = CountingUnicodedata()
    real, config.unicodedata = config.unicodedata, counting  # type: ignore[assignment]
    try:
        problem, key = check_key(raw)
    finally:
        config.unicodedata = real
    assert counting.looked_at <= 4 * MAX_KEY_CHARS
    if problem is None:  # what is sent in a header: visible ASCII, short
        assert len(key) <= MAX_KEY_CHARS and all("!" <= char <= "~" for char in key)


def test_a_model_name_longer_than_any_model_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(InvalidSettings, match="The model name is 1,000 characters"):
        ChatSettings(model="m" * 1000)
    ChatSettings(model="minimax/" + "m" * 100)  # long names that exist still pass


def test_refusals_count_per_address_and_then_refuse_at_once() -> None:
    guard = Guard(per_session=0, per_address=0, max_upstream=0, refused_per_address=3)

    async def visit() -> None:
        for error in (InvalidKey(key="no_key"), BadInput("too long"), InvalidSettings("range")):
            await guard.screen("198.51.100.1")
            await guard.refused("198.51.100.1", error)
        with pytest.raises(Throttled, match="refused messages from your network address: at most 3"):
            await guard.screen("198.51.100.1")
        await guard.screen("198.51.100.2")  # another address is not affected
        for not_input in (MissingKey(key="no_key"), Busy(key="busy", params={"count": 1}), Throttled("slow")):
            await guard.refused("198.51.100.2", not_input)  # not the sender's input: never counted
        await guard.screen("198.51.100.2")

    asyncio.run(visit())


@pytest.fixture
def refusing_app(shared_api: FakeAPI, tmp_path: Path) -> Iterator[AppProcess | AppInProcess]:
    shared_api.reset()
    app = make_app(
        tmp_path / "app.log",
        AIMLAPI_BASE_URL=shared_api.base_url,
        AIMLAPI_KEY="server-key",
        TRUSTED_PROXY_HOPS="1",
        RATE_LIMIT_REFUSED_PER_ADDRESS="3",
    ).start()
    yield app
    app.stop()


def test_an_address_whose_messages_keep_being_refused_is_refused_at_once(
    refusing_app: AppProcess | AppInProcess, shared_api: FakeAPI
) -> None:
    def send(text: str, address: str, **fields: Any) -> str:
        return raw_chat(refusing_app.url, text, headers={"X-Forwarded-For": address}, **fields)

    refused = [send(f"bad key {n}", "203.0.113.5", user_key="a" * HUGE) for n in range(3)]
    assert all("characters long; at most 512 are accepted" in answer for answer in refused)  # by its length
    after = send("a good message", "203.0.113.5")
    assert "Too many refused messages from your network address: at most 3 a minute" in after
    assert STAND_IN_REPLY in send("someone else", "198.51.100.8")
    assert [r.body["messages"][-1]["content"] for r in shared_api.chat_requests()] == ["someone else"]


def test_a_huge_model_name_is_never_sent(refusing_app: AppProcess | AppInProcess, shared_api: FakeAPI) -> None:
    """A 4.9 MB model name went upstream (and came back as the Model setting) in about a minute."""
    data: list[Any] = [{"text": "hi", "files": []}, [], *{**defaults(), "model": "m" * HUGE}.values()]
    session_hash = uuid.uuid4().hex[:11]
    with requests.Session() as http:
        http.post(
            refusing_app.url + "gradio_api/queue/join",
            json={"data": data, "fn_index": chat_fn_index(refusing_app.url), "session_hash": session_hash},
            timeout=30,
        ).raise_for_status()
        events = http.get(
            refusing_app.url + "gradio_api/queue/data", params={"session_hash": session_hash}, timeout=60
        ).text
    assert "characters long; at most 200 are accepted" in events and len(events) < 100_000
    assert shared_api.chat_requests() == []
