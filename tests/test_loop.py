"""The event loop never waits on a store: a Redis that accepts connections and never answers, or a SQLite file
another process holds locked, degrades the budget and the shared rates, never the streams already running. And
waiting for a store never swallows a Stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from chat_backend.off_loop import OffLoop
from chat_backend.store import SQLITE_FILE
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import app_on
from tests.raw_queue import chat_fn_index, raw_chat

STAND_IN_REPLY = "Hello from the stand-in."
STORY = " ".join(f"w{i}" for i in range(80))  # 4 s at 0.05 s a chunk
# A stalled loop stops every stream for the store's whole timeout (2 s for Redis, 5 s for SQLite's lock); a free
# one sends a paced update every 50 ms or so, well under this even on a busy machine.
MAX_GAP_S = 1.2


class SilentServer:
    """A TCP server that accepts every connection and never sends a byte, as a hung Redis does."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._closed.set()
        for sock in [*self._held, self._listener]:
            sock.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def update_times(url: str, text: str, streaming: threading.Event) -> tuple[list[float], str]:
    """Send `text` over Gradio's queue; the arrival time of each streamed update, and the final output.
    `streaming` is set once the first update arrived."""
    session_hash = uuid.uuid4().hex[:11]
    data: list[Any] = [{"text": text, "files": []}, [], "abab6.5s-chat", "", 1.0, 0.95, 256, 0.0, 0.0, 0, ""]
    times: list[float] = []
    with requests.Session() as http:
        http.post(
            url + "gradio_api/queue/join",
            json={"data": data, "fn_index": chat_fn_index(url), "session_hash": session_hash, "event_data": None},
            timeout=10,
        ).raise_for_status()
        with http.get(
            url + "gradio_api/queue/data", params={"session_hash": session_hash}, stream=True, timeout=60
        ) as events:
            for line in events.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_generating":
                    times.append(time.monotonic())
                    streaming.set()
                elif message.get("msg") == "process_completed":
                    return times, json.dumps(message.get("output"))
    raise AssertionError("the queue ended without a completed event")


def stream_beside_others(app: AppProcess, api: FakeAPI, others: int = 3) -> tuple[float, str, list[str]]:
    """One long reply streaming while `others` messages arrive: its longest pause between updates once the
    others were sent (up to its final update, which waits for its own spend to be recorded: see test_budget),
    its final output, and the others' answers."""
    api.script_for("long story", Reply(text=STORY, delay=0.05))
    streaming = threading.Event()
    with ThreadPoolExecutor(others + 1) as pool:
        story = pool.submit(update_times, app.url, "long story", streaming)
        assert streaming.wait(30), "the long reply never started streaming"
        sent = time.monotonic()
        answers = [pool.submit(raw_chat, app.url, f"meanwhile {n}") for n in range(others)]
        times, final = story.result(60)
        replies = [answer.result(60) for answer in answers]
    after = [moment for moment in times if moment >= sent][:-1]  # the last waits for its own ledger write (budget)
    gaps = [later - earlier for earlier, later in zip([sent, *after], after, strict=False)]
    return max(gaps, default=0.0), final, replies


def test_a_redis_that_never_answers_stalls_no_stream(
    shared_api: FakeAPI, silent_redis: SilentServer, tmp_path: Path
) -> None:
    shared_api.reset()
    app = app_on(
        shared_api,
        tmp_path,
        REDIS_URL=f"redis://127.0.0.1:{silent_redis.port}/0",
        DAILY_BUDGET_USD="5",  # each message reads the day's spend from the store
        RATE_LIMIT_PER_ADDRESS="300",  # and the rates live there too
    ).start()
    try:
        gap, final, replies = stream_beside_others(app, shared_api)
    finally:
        app.stop()
    assert gap < MAX_GAP_S, f"the running stream stalled {gap:.1f} s while other messages met the hung Redis"
    assert "w79" in final and all(STAND_IN_REPLY in reply for reply in replies)  # the site still answers


def test_a_sqlite_store_locked_by_another_process_stalls_no_stream(shared_api: FakeAPI, tmp_path: Path) -> None:
    shared_api.reset()
    data = tmp_path / "data"
    data.mkdir()
    locker = sqlite3.connect(data / SQLITE_FILE, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # as a backup or a `sqlite3` shell left open would: readers wait too
    app = app_on(shared_api, tmp_path, DATA_DIR=str(data), DAILY_BUDGET_USD="5").start()
    try:
        gap, final, replies = stream_beside_others(app, shared_api)
    finally:
        app.stop()
        locker.close()
    assert gap < MAX_GAP_S, f"the running stream stalled {gap:.1f} s while other messages met the locked store"
    assert "w79" in final and all(STAND_IN_REPLY in reply for reply in replies)


def test_a_stop_that_comes_with_the_stores_answer_still_stops() -> None:
    """Stop cancels the reply's task. When the cancel reached the loop just behind a store call's answer (the guard
    and the budget ask the store as a message starts), Python 3.11's `asyncio.wait_for` returned the answer and
    dropped the cancel: the reply went on after Stop (test_browser's early-Stop test, 1 failure in 42 runs). Here
    the cancel is queued right behind the answer, every time."""

    async def stopped() -> bool:
        calls = OffLoop(threads=1)
        loop = asyncio.get_running_loop()
        submitted: list[Future[Any]] = []
        submit = calls._pool.submit

        def noted(fn: Any, *args: Any) -> Future[Any]:
            submitted.append(submit(fn, *args))
            return submitted[-1]

        calls._pool.submit = noted  # type: ignore[method-assign]
        answer = threading.Event()
        task = asyncio.create_task(calls(5, answer.wait))
        while not submitted:
            await asyncio.sleep(0)
        queued = threading.Event()

        def cancel_behind(_: Future[Any]) -> None:  # runs after asyncio's own, which hands the answer to the loop
            loop.call_soon_threadsafe(task.cancel)
            queued.set()

        submitted[0].add_done_callback(cancel_behind)
        answer.set()
        assert queued.wait(5)  # holding the loop, so that it finds both queued, the answer first
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert all(asyncio.run(stopped()) for _ in range(20))
