"""What one address may make the server keep (issue 20, items 2 and 3): session state in memory, uploads on disk.
Reproduced through the launched app with its default bounds; the bounds leave a class of 50 behind one NAT served."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from gradio_client import Client

from tests.app_process import AppProcess
from tests.conftest import app_on
from tests.fake_api import FakeAPI, Reply
from tests.test_app_api import chat
from tests.test_security import cache_bytes, chat_value, copy_step, raw_post, rss_mb


@pytest.fixture(scope="module")
def default_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app with every bound at its default (message rates off, as in the other attack tests)."""
    app = app_on(shared_api, tmp_path_factory.mktemp("volume")).start()
    yield app
    app.stop()


def test_forty_big_chat_values_from_fresh_sessions_leave_memory_within_100_mb(default_app: AppProcess) -> None:
    """Each accepted value stays in its session's state (Gradio keeps up to 10,000 sessions): 40 of 4.5 MB kept
    200-370 MB. The address's budget of accepted bytes refuses the rest before reading them."""
    index = copy_step(default_app)
    chat = json.dumps(chat_value(4_500_000)).encode()
    before = rss_mb(default_app)
    statuses = [
        raw_post(
            default_app,
            "/gradio_api/run/predict",
            b'{"data": [%s], "fn_index": %d, "session_hash": "fill-%d"}' % (chat, index, number),
        )
        for number in range(40)
    ]
    grown = rss_mb(default_app) - before
    print(f"RSS {before:.0f} MB -> +{grown:.0f} MB; statuses {statuses}")
    assert grown < 100 and 200 in statuses and set(statuses) <= {200, 429}
    refusal = requests.post(
        f"{default_app.url}gradio_api/run/predict", data=b"{}", headers={"content-type": "application/json"}, timeout=10
    )
    assert refusal.status_code == 429 and "a minute" in refusal.json()["detail"], refusal.text
    assert int(refusal.headers["retry-after"]) >= 1


def upload(app: AppProcess, number: int, size: int) -> requests.Response:
    content = os.urandom(size)  # distinct contents: Gradio stores identical files once
    return requests.post(f"{app.url}gradio_api/upload", files={"files": (f"{number}.bin", content)}, timeout=60)


def test_ten_uploads_of_ten_megabytes_at_once_store_at_most_60_mb(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, MAX_ATTACHMENT_MB="10").start()
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
    assert all("uploads" in reply.json()["detail"] and "a minute" in reply.json()["detail"] for reply in refused)


def test_a_full_upload_folder_refuses_uploads_with_a_message(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, UPLOAD_STORE_MB="3", MAX_ATTACHMENT_MB="2").start()
    try:
        first, second = upload(app, 1, 1_900_000), upload(app, 2, 1_900_000)
        stored = cache_bytes(app)
    finally:
        app.stop()
    assert first.ok and second.status_code == 413 and stored < 3_000_000
    assert "full" in second.json()["detail"] and "3 MB" in second.json()["detail"]


def test_session_state_is_bounded_by_the_session_capacity(shared_api: FakeAPI, tmp_path: Path) -> None:
    """With STATE_SESSIONS=2, a third session pushes the first one's state out: its next message comes without the
    earlier history (what any restart does too). The default keeps thousands."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path, STATE_SESSIONS="2").start()
    try:
        first = Client(app.url, verbose=False)
        shared_api.script(Reply(text="Paris."))
        chat(first, "Capital of France?")
        for other in range(2):
            chat(Client(app.url, verbose=False), f"other visitor {other}")
        chat(first, "Population?")
    finally:
        app.stop()
    sent = [m["content"] for m in shared_api.chat_requests()[-1].body["messages"]]
    assert "Population?" in sent and "Capital of France?" not in sent
