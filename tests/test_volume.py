"""What one address may make the server keep (issue 20, items 2 and 3): session state in memory, uploads on disk.
Reproduced through the launched app with its default bounds; the bounds leave a class of 50 behind one NAT served."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest.mock import patch

import gradio as gr
import limits.storage.memory
import pytest
import requests
from gradio.state_holder import StateHolder
from hypothesis import example, given
from hypothesis import strategies as st
from limits import RateLimitItemPerSecond
from limits.strategies import SlidingWindowCounterRateLimiter
from playwright.sync_api import expect

from chat_backend.config import (
    DEFAULT_BODY_MB_PER_MINUTE,
    DEFAULT_UPLOAD_MB_PER_MINUTE,
    DEFAULT_UPLOAD_STORE_MB,
    UPLOAD_SHARE_PER_ADDRESS,
    Settings,
)
from chat_backend.quotas import Windows
from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.asgi_driver import Answer, Recorder, request
from tests.fake_api import FakeAPI, Reply
from tests.helpers import (
    Pages,
    app_on,
    cache_bytes,
    chat,
    chat_step,
    chat_value,
    gradio_client,
    raw_post,
    rss_mb,
    run_event,
)
from tests.redis_server import RedisServer
from web.guard import RequestGuard
from web.sessions import SessionExpiry, forget_idle
from web.volume import FILE_COST, VolumeQuota, folder_bytes

ARTIFACTS = ROOT / "test-artifacts"
EDIT = b'{"index": 0, "value": "shorter", "previous_value": "lorem"}'  # what the edit step (`chat_step`) is told
VOLUME_DEFAULTS = {  # app_on turns the volume budgets off for other tests: these tests keep the defaults
    "BODY_MB_PER_MINUTE": f"{DEFAULT_BODY_MB_PER_MINUTE:g}",
    "UPLOAD_MB_PER_MINUTE": f"{DEFAULT_UPLOAD_MB_PER_MINUTE:g}",
    "UPLOAD_PER_ADDRESS_MB": f"{DEFAULT_UPLOAD_STORE_MB * UPLOAD_SHARE_PER_ADDRESS:g}",
}


@pytest.fixture(scope="module")
def default_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app with every bound at its default (message rates off, as in the other attack tests)."""
    app = app_on(shared_api, tmp_path_factory.mktemp("volume"), process=True, **VOLUME_DEFAULTS).start()
    yield app
    app.stop()


def test_forty_big_chat_values_from_fresh_sessions_leave_memory_within_100_mb(default_app: AppProcess) -> None:
    """Each accepted value stays in its session's state (Gradio keeps up to 10,000 sessions): 40 of 4.5 MB kept
    200-370 MB. The address's budget of accepted bytes refuses the rest before reading them."""
    index = chat_step(default_app)
    chat = json.dumps(chat_value(4_500_000)).encode()
    before = rss_mb(default_app)
    statuses = [
        raw_post(
            default_app,
            "/gradio_api/run/predict",
            b'{"data": [%s], "fn_index": %d, "session_hash": "fill-%d", "event_data": %s}'
            % (chat, index, number, EDIT),
        )
        for number in range(40)
    ]
    grown = rss_mb(default_app) - before
    print(f"RSS {before:.0f} MB -> +{grown:.0f} MB; statuses {statuses}")
    assert grown < 100 and 200 in statuses and set(statuses) <= {200, 429}
    refusal = requests.post(
        f"{default_app.url}gradio_api/run/predict",
        data=b'{"data": [%s], "fn_index": %d, "session_hash": "one-more", "event_data": %s}' % (chat, index, EDIT),
        headers={"content-type": "application/json", "accept-language": "zh-CN"},
        timeout=30,
    )
    assert refusal.status_code == 429 and "每分钟最多 60 MB" in refusal.json()["detail"], refusal.text
    assert int(refusal.headers["retry-after"]) >= 1


def upload(app: AppProcess, number: int, size: int) -> requests.Response:
    content = os.urandom(size)  # distinct contents: Gradio stores identical files once
    return requests.post(f"{app.url}gradio_api/upload", files={"files": (f"{number}.bin", content)}, timeout=60)


def test_ten_uploads_of_ten_megabytes_at_once_store_at_most_60_mb(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, process=True, MAX_ATTACHMENT_MB="10", **VOLUME_DEFAULTS).start()
    try:
        before = cache_bytes(app)
        with ThreadPoolExecutor(10) as pool:
            replies = list(pool.map(lambda n: upload(app, n, 9_900_000), range(10)))
        stored = (cache_bytes(app) - before) / 1_000_000
    finally:
        app.stop()
    print(f"stored {stored:.1f} MB; statuses {[reply.status_code for reply in replies]}")
    assert stored <= 60 and any(reply.ok for reply in replies)
    refused = [reply for reply in replies if not reply.ok]
    assert refused and all(reply.status_code == 429 for reply in refused)
    # the page shows an upload's refusal as "HTTP 429: <body>": the body is the message itself, not JSON
    assert all(reply.headers["content-type"].startswith("text/plain") for reply in refused)
    assert all("uploads" in reply.text and "a minute" in reply.text for reply in refused)


def test_a_full_upload_folder_refuses_uploads_with_a_message(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, process=True, UPLOAD_STORE_MB="3", MAX_ATTACHMENT_MB="2").start()
    try:
        first, second = upload(app, 1, 1_900_000), upload(app, 2, 1_900_000)
        stored = cache_bytes(app)
    finally:
        app.stop()
    assert first.ok and second.status_code == 413 and stored < 3_000_000
    assert "full" in second.text and "3 MB" in second.text and not second.text.startswith("{")


def test_session_state_is_bounded_by_the_session_capacity(shared_api: FakeAPI, tmp_path: Path) -> None:
    """With STATE_SESSIONS=2, a third session pushes the first one's state out: its next message comes without the
    earlier history (what any restart does too). The default keeps thousands."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path, STATE_SESSIONS="2").start()
    try:
        first = gradio_client(app.url)
        shared_api.script(Reply(text="Paris."))
        chat(first, "Capital of France?")
        for other in range(2):
            chat(gradio_client(app.url), f"other visitor {other}")
        chat(first, "Population?")
    finally:
        app.stop()
    sent = [m["content"] for m in shared_api.chat_requests()[-1].body["messages"]]
    assert "Population?" in sent and "Capital of France?" not in sent


def fresh_step(url: str, number: int) -> str:
    """One cheap unqueued step from a session of its own, named in the body: that session."""
    step = run_event(url, "_apply_carried", [None], f"fresh-{number}", headers={"X-Forwarded-For": ROGUE})
    assert step.ok, step.text[:300]
    return f"fresh-{number}"


def fresh_call(url: str, number: int) -> str:
    """One `/call/chat` that names no session: Gradio makes its event's id the session (review 8's second look:
    these were not counted). Run to its end (it fails, one input of eleven, but only after its state is made)."""
    headers = {"X-Forwarded-For": ROGUE}
    reply = requests.post(f"{url}gradio_api/call/chat", json={"data": [f"atk {number}"]}, headers=headers, timeout=30)
    assert reply.ok, reply.text[:300]
    event = reply.json()["event_id"]
    requests.get(f"{url}gradio_api/call/chat/{event}", headers=headers, timeout=30)
    return event


@pytest.mark.parametrize("fresh", [fresh_step, fresh_call], ids=["unqueued steps", "calls naming no session"])
def test_one_address_opening_fresh_sessions_forgets_only_its_own(
    shared_api: FakeAPI, tmp_path: Path, fresh: Callable[[str, int], str]
) -> None:
    """The reproduction (review 8, F7): cheap requests, each from a fresh session, pushed every other visitor's
    state out of Gradio's one LRU of STATE_SESSIONS. Now one address holds at most STATE_SESSIONS_PER_ADDRESS of
    them: its own oldest go, and another address's chat keeps its history."""
    shared_api.reset()
    env = {"STATE_SESSIONS": "6", "STATE_SESSIONS_PER_ADDRESS": "3", "TRUSTED_PROXY_HOPS": "1"}
    app = app_on(shared_api, tmp_path, **env).start()
    try:
        visitor = gradio_client(app.url, headers={"X-Forwarded-For": "198.51.100.20"})
        shared_api.script(Reply(text="Paris."))
        chat(visitor, "Capital of France?")
        opened = [fresh(app.url, number) for number in range(12)]  # twice the whole capacity
        held = [session for session in app.running[0].state_holder.session_data if session in opened]
        chat(visitor, "Population?")
    finally:
        app.stop()
    assert held == opened[-3:]
    sent = [m["content"] for m in shared_api.chat_requests()[-1].body["messages"]]
    assert "Population?" in sent and "Capital of France?" in sent


ROGUE = "203.0.113.66"


# --- In-process: the defaults serve a class, replicas share the budgets, Gradio keeps sessions as assumed ---------

ROOM_ADDRESS = "203.0.113.7"


def volume(storage_url: str | None = None, folder: str = "", **bounds: int) -> tuple[VolumeQuota, Recorder]:
    """A VolumeQuota with the default bounds but `bounds`, in front of a `Recorder`; uploads land in `folder`."""
    defaults = Settings()
    downstream = Recorder()
    settings = {
        "body_per_minute": defaults.body_per_minute,
        "upload_per_minute": defaults.upload_per_minute,
        "upload_store": defaults.upload_store_bytes,
        "upload_per_address": defaults.upload_address_bytes,
        "share_seconds": defaults.cache_clear_minutes * 60,
        **bounds,
    }
    quota = VolumeQuota(
        downstream, upload_folder=folder or tempfile.mkdtemp(), trusted_hops=0, storage_url=storage_url, **settings
    )
    return quota, downstream


async def post(app: VolumeQuota, path: str, size: int, declared: bool = True) -> int:
    headers = {"content-type": "application/json", **({"content-length": str(size)} if declared else {})}
    return (await request(app, path, b"x" * size, headers, client=ROOM_ADDRESS)).status


def test_a_class_of_50_behind_one_address_fits_the_default_budgets() -> None:
    """150 messages in a minute, each as the page sends it mid-lesson: the textbox, the history twice (40 KB, then
    with the reply), the queue's join and the saved conversations (120 KB); and a dozen 4 MB attachments."""
    quota, _ = volume()

    async def lesson() -> list[int]:
        message = [1_000, 40_000, 2_000, 44_000, 120_000]
        statuses = [await post(quota, "/gradio_api/run/predict", size) for _ in range(150) for size in message]
        return statuses + [await post(quota, "/gradio_api/upload", 4_000_000) for _ in range(12)]

    assert set(asyncio.run(lesson())) == {200}


def test_replicas_share_the_budget_through_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        (one, _), (two, _) = (volume(server.url, body_per_minute=1_000_000) for _ in range(2))

        async def burst() -> list[int]:
            return [await post(one, "/x", 600_000), await post(two, "/x", 600_000), await post(one, "/x", 300_000)]

        assert asyncio.run(burst()) == [200, 429, 200]
    finally:
        server.stop()


def test_a_streamed_body_is_counted_as_it_arrives() -> None:
    """Without a Content-Length the budget is spent a megabyte at a time; past it the app sees a disconnect."""
    quota, downstream = volume(body_per_minute=2_500_000)

    async def streams() -> list[int]:
        return [await post(quota, "/x", 1_500_000, declared=False) for _ in range(2)]

    assert asyncio.run(streams()) == [200, 429] and len(downstream.bodies[0]) == 1_500_000
    assert len(downstream.bodies) == 2 and len(downstream.bodies[1]) < 1_500_000  # cut short, then refused


def form(count: int, size: int = 1) -> tuple[bytes, dict[str, str]]:
    """`count` files of `size` bytes in one multipart upload, as the page sends them, and its headers."""
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="files"; filename="%d"\r\n\r\n%s\r\n'
        % (BOUNDARY, number, os.urandom(size))
        for number in range(count)
    ]
    body = b"".join(parts) + b"--%s--\r\n" % BOUNDARY
    return body, {
        "content-type": f"multipart/form-data; boundary={BOUNDARY.decode()}",
        "content-length": str(len(body)),
    }


BOUNDARY = b"----volume-form"


def entries(folder: Path) -> int:
    """Folders and files under `folder`: the inodes its uploads take."""
    return sum(1 for _ in folder.rglob("*")) if folder.exists() else 0


async def upload_from(app: VolumeQuota, address: str, count: int, size: int) -> Answer:
    body, headers = form(count, size)
    return await request(app, "/gradio_api/upload", body, headers, client=address)


def test_each_file_of_an_upload_costs_its_folder_and_inodes() -> None:
    """Review 8, F5: 1,000 one-byte files cost 131 KB of a budget and 2,000 inodes of disk. Each file now costs
    FILE_COST besides its bytes: a megabyte a minute takes 30 tiny files, not 7,000."""
    quota, _ = volume(upload_per_minute=1_000_000, upload_per_address=0, upload_store=0)

    async def uploads() -> list[int]:
        return [(await upload_from(quota, ROOM_ADDRESS, 10, 1)).status for _ in range(4)]

    assert asyncio.run(uploads()) == [200, 200, 200, 429]  # 30 files: 983 KB; the 40th goes past the megabyte
    assert 30 * FILE_COST < 1_000_000 < 40 * FILE_COST


def test_the_folder_counts_each_file_as_uploads_are_charged(tmp_path: Path) -> None:
    """30 one-byte files fill a megabyte of UPLOAD_STORE_MB, as walked and as let in."""
    for number in range(30):
        (tmp_path / str(number)).mkdir()
        (tmp_path / str(number) / "file").write_bytes(b"x")
    assert folder_bytes(str(tmp_path)) == 30 * (1 + FILE_COST)
    quota, _ = volume(folder=str(tmp_path), upload_per_minute=0, upload_per_address=0, upload_store=1_000_000)
    answer = asyncio.run(upload_from(quota, ROOM_ADDRESS, 1, 1))
    assert answer.status == 413 and "full" in answer.body.decode()


def test_one_address_gets_its_share_of_the_upload_folder_and_others_still_theirs() -> None:
    """Review 8, F8: at 60 MB a minute one address filled the folder for everyone in 34 minutes. Its share over the
    folder's clearing period is UPLOAD_PER_ADDRESS_MB; past it that address waits, and others upload."""
    quota, _ = volume(upload_per_minute=0, upload_per_address=10_000_000, share_seconds=3600)

    async def uploads() -> list[Answer]:
        mine = [await upload_from(quota, ROOM_ADDRESS, 2, 2_000_000) for _ in range(3)]
        return [*mine, await upload_from(quota, "198.51.100.20", 2, 2_000_000)]

    *accepted, refused, other = asyncio.run(uploads())
    assert [answer.status for answer in accepted] == [200, 200] and other.status == 200
    assert refused.status == 429 and refused.headers["content-type"].startswith("text/plain")
    assert "share" in refused.body.decode() and "10 MB in 60 minutes" in refused.body.decode()
    # The long window's wait, not a minute's: its count fades over the next hour once this (clock) hour ends.
    assert 60 < int(refused.headers["retry-after"]) <= 2 * 3600


class Clock:
    """The clock of `limits`' memory storage, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0 + 3599  # the last second of an hour: an hour's window is about to end

    def time(self) -> float:
        return self.now


HOUR, SHARE = 3600, 10_000_000
PAUSES = st.one_of(st.just(0.0), st.floats(0, 120), st.floats(0, 2 * HOUR))  # most often within the window
SIZES = st.one_of(st.just(SHARE), st.integers(1_000, SHARE))


@given(uploads=st.lists(st.tuples(PAUSES, SIZES), min_size=1, max_size=6), later=PAUSES, cost=SIZES)
@example(uploads=[(0.0, SHARE)], later=5.0, cost=SHARE // 4)  # the share used up in an hour's last minute
def test_the_wait_a_refusal_names_is_when_that_upload_fits(uploads: list, later: float, cost: int) -> None:
    """After the wait the upload fits, and not long before it. `limits` reports when one more byte fits, and with
    only this window's count, this window's end: an hour's share said 56 s at 19:59:04, and the upload was refused
    again then. (Not long before: by a second and one byte's weight, since the library rounds the count down.)"""
    clock, item, key = Clock(), RateLimitItemPerSecond(SHARE, HOUR), "198.51.100.7"
    with patch.object(limits.storage.memory, "time", clock):
        windows = Windows(None, SlidingWindowCounterRateLimiter)
        for pause, size in uploads:
            clock.now += pause
            windows.hit(item, key, cost=size)
        clock.now += later
        wait, asked_at = windows.wait_needed(item, key, cost=cost), clock.now
        if wait > 1 + HOUR / 1_000:
            clock.now = asked_at + wait - 1 - HOUR / 1_000
            assert windows.wait_needed(item, key, cost=cost) > 0, (wait, clock.now - asked_at)
        clock.now = asked_at + wait + 0.001
        assert windows.hit(item, key, cost=cost), wait


def test_an_upload_larger_than_the_whole_budget_is_refused_with_a_wait() -> None:
    """It never fits: refused with the budget's message and a finite Retry-After, not a server error."""
    quota, _ = volume(upload_per_minute=1_000_000, upload_per_address=0, upload_store=0)
    answer = asyncio.run(upload_from(quota, ROOM_ADDRESS, 1, 2_000_000))
    assert answer.status == 429 and "at most 1 MB a minute" in answer.body.decode()
    assert 1 <= int(answer.headers["retry-after"]) <= 120


def test_through_redis_the_wait_is_when_the_upload_fits(tmp_path: Path) -> None:
    """Redis keeps the counters as windows of its own (each begins at its first hit): the same rule holds."""
    server = RedisServer(tmp_path).start()
    try:
        item = RateLimitItemPerSecond(SHARE, HOUR)
        windows = Windows(server.url, SlidingWindowCounterRateLimiter)
        assert windows.hit(item, "198.51.100.7", cost=SHARE)
        wait = windows.wait_needed(item, "198.51.100.7", cost=SHARE // 4)
        assert HOUR + HOUR / 4 - 5 < wait <= HOUR + HOUR / 4  # the full hour, then a quarter of it fades
    finally:
        server.stop()


def test_the_share_is_the_apps_setting_and_follows_the_forwarded_address(shared_api: FakeAPI, tmp_path: Path) -> None:
    """Through the app behind one trusted proxy: each X-Forwarded-For is an address with its own share."""
    app = app_on(shared_api, tmp_path, TRUSTED_PROXY_HOPS="1", UPLOAD_PER_ADDRESS_MB="1").start()

    def upload_as(address: str) -> requests.Response:
        files = [("files", (f"{n}.bin", os.urandom(300_000))) for n in range(2)]
        headers = {"X-Forwarded-For": address, "accept-language": "zh-CN"}
        return requests.post(f"{app.url}gradio_api/upload", files=files, headers=headers, timeout=30)

    try:
        replies = [upload_as("198.51.100.1"), upload_as("198.51.100.1"), upload_as("198.51.100.2")]
    finally:
        app.stop()
    assert [reply.status_code for reply in replies] == [200, 429, 200]
    assert "每 60 分钟最多 1 MB" in replies[1].text and replies[1].headers["content-type"].startswith("text/plain")


def test_the_reviewers_thousand_file_upload_is_refused_and_stores_nothing(default_app: AppProcess) -> None:
    """Review 8, F5, through the launched app: 1,000 tiny files in one request made 1,000 folders and 1,000 files.
    Now the eleventh part refuses it (413, the page's text) before Gradio stores any; one message's files pass."""
    folder = Path(default_app.env["GRADIO_TEMP_DIR"])
    url, before = f"{default_app.url}gradio_api/upload", entries(folder)
    files = [("files", (f"{n}", str(n).encode(), "text/plain")) for n in range(1000)]
    refused = requests.post(url, files=files, timeout=60)
    after_refusal = entries(folder)
    assert refused.status_code == 413 and refused.headers["content-type"].startswith("text/plain")
    assert "at most 10 at a time" in refused.text
    assert after_refusal - before == 0, f"{after_refusal - before} new entries"
    page = [("files", (f"notes{n}.txt", os.urandom(2_000), "text/plain")) for n in range(10)]
    accepted = requests.post(url, files=page, timeout=60)
    assert accepted.ok and len(accepted.json()) == 10
    assert entries(folder) - before == 20  # a folder and a file each


def test_gradio_keeps_sessions_in_order_of_use_and_idle_ones_are_forgotten() -> None:
    with gr.Blocks() as demo:
        state = gr.State([])
    holder = StateHolder()
    holder.set_blocks(demo)
    for session in ("a", "b", "c"):
        holder[session][state._id] = ["a chat"]
    now = datetime.datetime.now()
    holder.time_last_used["a"] = now - datetime.timedelta(minutes=90)
    holder.time_last_used["b"] = now - datetime.timedelta(minutes=61)
    assert forget_idle(holder, 3600, now) == 2 and list(holder.session_data) == ["c"]
    holder["a"]  # a visitor coming back gets a fresh session, at the end
    assert list(holder.session_data) == ["c", "a"] and holder.time_last_used["a"] > now


def test_a_body_the_guard_refuses_unread_costs_nothing() -> None:
    """Volume is counted as the body is read: 30 declared 20 MB bodies refused by the guard's size limit (413,
    unread) leave the address's whole budget, so its next message goes through."""
    downstream = Recorder()
    guard = RequestGuard(downstream, body_limit=5_000_000, upload_limit=6_000_000, upload_folder=tempfile.mkdtemp())
    quota = VolumeQuota(
        guard,
        body_per_minute=10_000_000,
        upload_per_minute=0,
        upload_folder="",
        upload_store=0,
        upload_per_address=0,
        share_seconds=3600,
        trusted_hops=0,
    )

    async def attempts() -> list[int]:
        big = {"content-type": "application/json", "content-length": "20000000"}
        statuses = [(await request(quota, "/x", b"", big)).status for _ in range(30)]
        fits = {"content-type": "application/json", "content-length": "4000000"}
        return statuses + [(await request(quota, "/x", b"[" + b" " * 3_999_998 + b"]", fits)).status]

    assert asyncio.run(attempts()) == [413] * 30 + [200]


def test_the_expiry_sweeps_the_apps_sessions_as_requests_arrive() -> None:
    with gr.Blocks() as demo:
        state = gr.State([])
    gradio_app = type("GradioApp", (), {"state_holder": StateHolder()})()
    gradio_app.state_holder.set_blocks(demo)
    for session in ("idle", "recent"):
        gradio_app.state_holder[session][state._id] = ["a chat"]
    gradio_app.state_holder.time_last_used["idle"] -= datetime.timedelta(minutes=61)
    expiry = SessionExpiry(Recorder(), max_idle=3600)
    assert asyncio.run(request(expiry, "/", method="GET", app_state=gradio_app)).status == 200
    assert list(gradio_app.state_holder.session_data) == ["recent"]


# Last in this file: Playwright's sync API keeps an event loop running in this thread until the module ends.
@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="needs Debian's chromium")
def test_the_page_uploads_a_messages_files_at_once_and_says_why_more_are_refused(
    pages: Pages, shared_api: FakeAPI, tmp_path: Path
) -> None:
    paths = []
    for number in range(11):
        paths.append(tmp_path / f"notes{number}.txt")
        paths[-1].write_text(f"tide table {number}\n")
    app = app_on(shared_api, tmp_path, **VOLUME_DEFAULTS).start()
    page = pages.new()
    try:
        page.goto(app.url)
        attach = page.locator('#chat-input input[data-testid="file-upload"]')
        attach.set_input_files([str(path) for path in paths[:10]])  # one request, as Gradio's client sends them
        thumbnails = page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")
        expect(thumbnails).to_have_count(10, timeout=15_000)
        attach.set_input_files([str(path) for path in paths])
        expect(page.get_by_text("Too many files in one upload: at most 10")).to_be_visible(timeout=15_000)
    finally:
        app.stop()


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="needs Debian's chromium")
def test_the_page_shows_why_an_upload_was_refused(
    pages: Pages, shared_api: FakeAPI, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    notes, more = tmp_path / "notes.txt", tmp_path / "more.txt"
    notes.write_bytes(b"tide tables\n" * 125_000)  # 1.5 MB each
    more.write_bytes(b"wind tables\n" * 125_000)
    app = app_on(shared_api, tmp_path, UPLOAD_MB_PER_MINUTE="2").start()
    page = pages.new()
    try:
        page.goto(app.url)
        attach = page.locator('#chat-input input[data-testid="file-upload"]')
        attach.set_input_files(str(notes))
        expect(page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")).to_be_visible()
        attach.set_input_files(str(more))
        toast = page.get_by_text("Too many uploads from your network address")
        expect(toast).to_be_visible(timeout=15_000)
        assert '{"detail"' not in toast.inner_text(), "the page shows the message, not the JSON around it"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    finally:
        app.stop()
