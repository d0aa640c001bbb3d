"""Abuse limits, through the launched app's programmatic API (the same path a script would take)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from gradio_client import handle_file
from hypothesis import given
from hypothesis import strategies as st

from chat_backend.config import load_settings
from chat_backend.errors import Busy, Throttled
from chat_backend.off_loop import OffLoop
from chat_backend.quotas import Guard, visitor_address
from tests.app_process import AppProcess, make_app
from tests.fake_api import FakeAPI, Reply
from tests.helpers import DEFAULTS, chat, gradio_client, make_pdf, notices
from tests.raw_queue import raw_chat
from tests.redis_server import RedisServer

STAND_IN_REPLY = "Hello from the stand-in."


def start_app(shared_api: FakeAPI, folder: Path, **env: str) -> AppProcess:
    return make_app(folder / "app.log", AIMLAPI_BASE_URL=shared_api.base_url, AIMLAPI_KEY="limits", **env).start()


@pytest.fixture(scope="module")
def limited_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """Sizes and the upstream cap set small; message rates off (they have their own app below)."""
    app = start_app(
        shared_api,
        tmp_path_factory.mktemp("limited"),
        MAX_MESSAGE_CHARS="200",
        MAX_ATTACHMENT_MB="0.002",
        MAX_PDF_PAGES="1",
        MAX_HISTORY_MESSAGES="4",
        MAX_UPSTREAM_CALLS="1",
        RATE_LIMIT_PER_SESSION="0",
        RATE_LIMIT_PER_ADDRESS="0",
    )
    yield app
    app.stop()


def error_notice(messages: list[dict]) -> str:
    [notice] = [n for n in notices(messages) if "error" in n["metadata"]["id"]]
    return notice["content"]


def test_message_rates_per_session_and_per_address(shared_api: FakeAPI, tmp_path: Path) -> None:
    shared_api.reset()
    app = start_app(shared_api, tmp_path, RATE_LIMIT_PER_SESSION="3", RATE_LIMIT_PER_ADDRESS="5")
    try:
        first = gradio_client(app.url)
        for turn in range(3):
            assert not [n for n in notices(chat(first, f"hello {turn}")[1]) if "error" in n["metadata"]["id"]]
        assert "at most 3 a minute" in error_notice(chat(first, "one too many")[1])
        second = gradio_client(app.url)  # a new session from the same address
        for turn in range(2):
            chat(second, f"second {turn}")
        notice = error_notice(chat(second, "over the address limit")[1])
        assert "your network address" in notice and "at most 5 a minute" in notice and "Wait" in notice
    finally:
        app.stop()
    sent = [r.body["messages"][-1]["content"] for r in shared_api.chat_requests()]
    assert "one too many" not in sent and "over the address limit" not in sent and len(sent) == 5


def test_an_overlong_message_is_refused_with_the_limit(limited_app: AppProcess, app_api: FakeAPI) -> None:
    notice = error_notice(chat(gradio_client(limited_app.url), "x" * 201)[1])
    assert "201 characters; the limit is 200" in notice and app_api.chat_requests() == []


def test_a_pdf_with_too_many_pages_is_refused(limited_app: AppProcess, app_api: FakeAPI, tmp_path: Path) -> None:
    pdf = tmp_path / "two-pages.pdf"
    pdf.write_bytes(make_pdf(["one", "two"]))
    client = gradio_client(limited_app.url)
    job = client.submit({"text": "read", "files": [handle_file(str(pdf))]}, *DEFAULTS.values(), api_name="/chat")
    assert "PDFs may have at most 1" in error_notice(job.result(timeout=30)[0])  # (messages, Model output)
    assert app_api.chat_requests() == []


def test_an_oversized_attachment_is_refused_at_upload(limited_app: AppProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 5_000)
    client = gradio_client(limited_app.url)
    with pytest.raises(Exception, match="(?i)too large|size"):
        client.submit({"text": "read", "files": [handle_file(str(big))]}, *DEFAULTS.values(), api_name="/chat").result(
            timeout=30
        )


def test_only_the_newest_messages_go_upstream(limited_app: AppProcess, app_api: FakeAPI) -> None:
    client = gradio_client(limited_app.url)
    for turn in range(4):
        chat(client, f"turn {turn}")
    _, final = chat(client, "turn 4")
    sent = [m for m in app_api.chat_requests()[-1].body["messages"] if m["role"] != "system"]
    assert len(sent) == 5 and sent[-1]["content"] == "turn 4"  # the 4 earlier messages allowed, and the newest
    assert any("Older messages left out" in n["metadata"]["title"] for n in notices(final))


def test_the_upstream_cap_answers_busy_instead_of_waiting(limited_app: AppProcess, app_api: FakeAPI) -> None:
    app_api.script_for("slow one", Reply(text=" ".join(f"w{i}" for i in range(60)), delay=0.03))
    slow = threading.Thread(target=chat, args=(gradio_client(limited_app.url), "slow one"))
    slow.start()
    app_api.wait_for_message("slow one")
    notice = error_notice(chat(gradio_client(limited_app.url), "while busy")[1])
    slow.join(30)
    assert "maximum of 1 messages at once" in notice
    assert chat(gradio_client(limited_app.url), "after")[1][0]["content"] == "Hello from the stand-in."


def test_the_owner_can_hide_the_programmatic_api(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = start_app(shared_api, tmp_path, HIDE_API="1")
    try:
        client = gradio_client(app.url)
        assert "/chat" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        with pytest.raises(ValueError, match="Cannot find a function"):
            client.predict({"text": "hi", "files": []}, *DEFAULTS.values(), api_name="/chat")
    finally:
        app.stop()


# --- Who the visitor is ---------------------------------------------------------------------------------------

forwarded_entries = st.lists(st.text(alphabet=st.characters(blacklist_characters=","), max_size=40), max_size=6)
addresses = st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str))


@given(visitor=forwarded_entries, trusted=st.lists(addresses, min_size=1, max_size=4), peer=addresses)
def test_whatever_a_visitor_prepends_changes_nothing(visitor: list[str], trusted: list[str], peer: str) -> None:
    hops = len(trusted)
    honest = visitor_address(", ".join(trusted), peer, hops)
    assert visitor_address(", ".join([*visitor, *trusted]), peer, hops) == honest
    assert honest == visitor_address(trusted[0], "", 1)  # the outermost trusted proxy's entry


@given(header=st.text(max_size=300), peer=addresses, hops=st.integers(0, 5))
def test_any_header_gives_a_short_key(header: str, peer: str, hops: int) -> None:
    address = visitor_address(header, peer, hops)
    assert len(address) <= 100
    if hops == 0 or not header.replace(",", "").strip():
        assert address == visitor_address("", peer, 0)  # no proxies trusted, or none wrote: the socket peer


def test_addresses_are_normalised_and_ipv6_grouped_by_64() -> None:
    assert visitor_address("", "203.0.113.9", 0) == "203.0.113.9"
    assert visitor_address("1.1.1.1, 203.0.113.9", "10.0.0.2", 0) == "10.0.0.2"
    assert visitor_address("1.1.1.1, 203.0.113.9", "10.0.0.2", 1) == "203.0.113.9"
    assert visitor_address("1.1.1.1, 203.0.113.9, 10.0.0.3", "10.0.0.2", 2) == "203.0.113.9"
    assert visitor_address("203.0.113.9", "10.0.0.2", 3) == "203.0.113.9"  # a short chain: its first entry
    assert visitor_address(" 2001:db8:1:2::5 ", "", 1) == visitor_address("2001:db8:1:2:ffff::1", "", 1)
    assert ipaddress.ip_network(visitor_address("2001:db8::5", "", 1)).prefixlen == 64
    assert visitor_address("::ffff:198.51.100.4", "", 1) == "198.51.100.4"


# --- The Guard ------------------------------------------------------------------------------------------------


async def send(guard: Guard, session: str, address: str) -> None:
    """One message through `guard`: admitted, and done at once."""
    async with guard.admit(session, address):
        pass


def test_a_refusal_never_uses_up_the_rate() -> None:
    async def visit() -> None:
        guard = Guard(per_session=2, per_address=3, max_upstream=1)
        async with guard.admit("busy-holder", "198.51.100.1"):
            for _ in range(5):  # "send again in a moment", five times, while the server is busy
                with pytest.raises(Busy):
                    await send(guard, "patient", "198.51.100.2")
        for _ in range(2):
            await send(guard, "patient", "198.51.100.2")
        with pytest.raises(Throttled, match="this chat: at most 2"):
            await send(guard, "patient", "198.51.100.2")
        await send(guard, "other tab", "198.51.100.2")  # the refusal above did not count for the address either
        with pytest.raises(Throttled, match="network address: at most 3"):
            await send(guard, "third tab", "198.51.100.2")

    asyncio.run(visit())


class NoStoreThreads(OffLoop):
    async def __call__(self, wait: float, call: Any, *args: Any) -> Any:
        raise AssertionError("a store thread was taken")


def test_windows_in_memory_take_no_store_thread_and_windows_in_redis_do(redis_server: RedisServer) -> None:
    """Found with py-spy: three store-thread hops a message, for windows in memory that cannot hang (3% of the app's
    CPU in a burst of 64 chats). In Redis, which can, they stay off the loop."""
    asyncio.run(send(Guard(per_session=2, per_address=3, max_upstream=1, off_loop=NoStoreThreads()), "s", "a"))
    in_redis = Guard(
        per_session=2, per_address=3, max_upstream=1, storage_url=redis_server.url, off_loop=NoStoreThreads()
    )
    with pytest.raises(AssertionError, match="a store thread was taken"):
        asyncio.run(send(in_redis, "s", "a"))


def test_one_address_and_one_session_hold_only_their_share_of_the_upstream_slots() -> None:
    guard = Guard(per_session=0, per_address=0, max_upstream=4, upstream_per_address=2, upstream_per_session=1)

    async def visit() -> None:
        async with AsyncExitStack() as held:
            for session in ("a1", "a2"):
                await held.enter_async_context(guard.admit(session, "198.51.100.1"))
            with pytest.raises(Busy, match="Your network address already has 2 replies"):
                await send(guard, "a3", "198.51.100.1")
            await held.enter_async_context(guard.admit("b1", "198.51.100.2"))  # another address is served
            with pytest.raises(Busy, match="This chat already has 1 reply in progress"):
                await send(guard, "b1", "198.51.100.2")
            await held.enter_async_context(guard.admit("a1", "198.51.100.3"))  # the same id elsewhere: another chat
            with pytest.raises(Busy, match="maximum of 4 messages at once"):
                await send(guard, "d1", "198.51.100.4")
        async with AsyncExitStack() as held:  # every slot came back
            for session in ("a1", "a2"):
                await held.enter_async_context(guard.admit(session, "198.51.100.1"))
            for address in ("198.51.100.2", "198.51.100.3"):
                await held.enter_async_context(guard.admit("x", address))

    asyncio.run(visit())


def test_an_address_may_hold_half_the_upstream_slots_unless_set() -> None:
    for env, expected in (
        ({}, 64),  # a class of 50 behind one address is answered at once
        ({"MAX_UPSTREAM_CALLS": "4"}, 2),
        ({"MAX_UPSTREAM_CALLS": "1"}, 1),
        ({"MAX_UPSTREAM_CALLS": "0", "CHAT_CONCURRENCY": "10"}, 5),
        ({"MAX_UPSTREAM_CALLS": "4", "MAX_UPSTREAM_PER_ADDRESS": "0"}, 0),
    ):
        assert load_settings(env, dotenv_path=None).max_upstream_per_address == expected, env


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_replicas_share_the_address_rate_through_redis_and_fall_back_when_it_stops(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = (Guard(per_session=0, per_address=3, max_upstream=0, storage_url=redis_server.url) for _ in range(2))
    for guard in (one, two, one):
        asyncio.run(send(guard, "s", "192.0.2.7"))
    with pytest.raises(Throttled):
        asyncio.run(send(two, "s", "192.0.2.7"))
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="chat_backend.quotas"):
        for _ in range(3):  # per-replica memory now: a fresh window, still enforced
            asyncio.run(send(two, "s", "192.0.2.7"))
        with pytest.raises(Throttled):
            asyncio.run(send(two, "s", "192.0.2.7"))
    warnings = [r.getMessage() for r in caplog.records if r.name == "chat_backend.quotas"]
    assert len(warnings) == 1 and "fall back" in warnings[0] and redis_server.url not in warnings[0]


# --- The launched app -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The rate limits at their defaults."""
    app = start_app(shared_api, tmp_path_factory.mktemp("defaults"))
    yield app
    app.stop()


def test_a_class_of_50_behind_one_address_is_never_throttled(default_app: AppProcess, app_api: FakeAPI) -> None:
    """50 sessions from 127.0.0.1, 3 messages each, all within a minute."""

    def student(number: int) -> list[str]:
        return [raw_chat(default_app.url, f"question {turn}", session_hash=f"student-{number}") for turn in range(3)]

    with ThreadPoolExecutor(8) as pool:
        answers = [answer for replies in pool.map(student, range(50)) for answer in replies]
    assert len(answers) == 150 and all(STAND_IN_REPLY in answer for answer in answers)
    assert len(app_api.chat_requests()) == 150


def test_one_runaway_session_is_still_throttled_by_default(default_app: AppProcess, app_api: FakeAPI) -> None:
    answers = [raw_chat(default_app.url, f"again {turn}", session_hash="runaway") for turn in range(11)]
    assert all(STAND_IN_REPLY in answer for answer in answers[:10])
    assert "Too many messages from this chat: at most 10 a minute" in answers[10]


def test_a_spoofed_forwarded_for_does_not_escape_the_per_address_limit(shared_api: FakeAPI, tmp_path: Path) -> None:
    """Behind one trusted proxy, as on a Space (which appends 203.0.113.5): the visitor's own entries and sessions
    change nothing."""
    shared_api.reset()
    app = start_app(
        shared_api, tmp_path, TRUSTED_PROXY_HOPS="1", RATE_LIMIT_PER_ADDRESS="3", RATE_LIMIT_PER_SESSION="0"
    )
    try:
        answers = [
            raw_chat(app.url, f"spoof {n}", headers={"X-Forwarded-For": f"10.9.{n}.1, 203.0.113.5"}) for n in range(4)
        ]
        other = raw_chat(app.url, "someone else", headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.8"})
    finally:
        app.stop()
    assert all(STAND_IN_REPLY in answer for answer in answers[:3])
    assert "your network address: at most 3" in answers[3]
    assert STAND_IN_REPLY in other  # a different visitor behind the same proxy is not affected


def test_one_address_cannot_take_every_upstream_slot(shared_api: FakeAPI, tmp_path: Path) -> None:
    """The reproduction: four stalled chats from one address took all of MAX_UPSTREAM_CALLS=4, and a visitor from
    another address got "Server busy"."""
    shared_api.reset()
    app = start_app(
        shared_api,
        tmp_path,
        MAX_UPSTREAM_CALLS="4",
        TRUSTED_PROXY_HOPS="1",
        RATE_LIMIT_PER_SESSION="0",
        RATE_LIMIT_PER_ADDRESS="0",
    )
    shared_api.script_for("stalled", *[Reply(text="held " * 20, stall_after=1) for _ in range(4)])
    hog = {"X-Forwarded-For": "203.0.113.5"}
    try:
        with ThreadPoolExecutor(4) as pool:
            jobs = [pool.submit(raw_chat, app.url, f"stalled {n}", headers=hog) for n in range(4)]
            deadline = time.monotonic() + 30
            while sum(job.done() for job in jobs) + len(shared_api.chat_requests()) < 4:  # each took a slot or not
                assert time.monotonic() < deadline, "the four chats neither reached the API nor were answered"
                concurrent.futures.wait(jobs, timeout=0.05, return_when=concurrent.futures.FIRST_COMPLETED)
            other = raw_chat(app.url, "someone else", headers={"X-Forwarded-For": "198.51.100.8"})
            shared_api.release()
            hogged = [job.result(30) for job in jobs]
    finally:
        shared_api.release()
        app.stop()
    assert STAND_IN_REPLY in other
    refused = [answer for answer in hogged if "Your network address already has 2 replies" in answer]
    assert len(refused) == 2 and sum("held" in answer for answer in hogged) == 2


def test_messages_are_answered_while_redis_is_down(shared_api: FakeAPI, tmp_path: Path) -> None:
    shared_api.reset()
    server = RedisServer(tmp_path).start()
    app = start_app(shared_api, tmp_path, REDIS_URL=server.url)
    try:
        assert STAND_IN_REPLY in raw_chat(app.url, "before")
        server.stop()
        answers = [raw_chat(app.url, f"after {n}") for n in range(3)]
    finally:
        app.stop()
        server.stop()
    assert all(STAND_IN_REPLY in answer for answer in answers)
    assert app.logs().count("Rate limits fall back to this process's memory") == 1
