"""web/health.py, the drain bookkeeping of chat_backend/metrics.py and the queue's idle polling, in-process
(tests/test_cluster.py runs them live)."""

from __future__ import annotations

import gc
import inspect
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from chat_backend.config import load_settings
from chat_backend.errors import Busy, Restarting
from chat_backend.metrics import REGISTRY, Replies, exposition
from chat_backend.stream import ChatResult
from web import health

TOKEN = "metrics-token-9f3"


def client(replies: Replies, token: str | None = TOKEN) -> TestClient:
    return TestClient(Starlette(routes=health.routes(replies, token)))


def test_readiness_turns_false_while_draining_and_liveness_does_not() -> None:
    replies = Replies()
    web = client(replies)
    assert web.get("/healthz/ready").status_code == 200
    assert replies.drain(0)  # nothing in flight: drained at once
    assert web.get("/healthz/ready").status_code == 503
    assert web.get("/healthz").text == "ok"


def test_metrics_are_404_without_a_token_or_with_a_wrong_one() -> None:
    assert client(Replies(), token=None).get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404
    web = client(Replies())
    assert web.get("/metrics").status_code == 404
    assert web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 404
    answer = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "chat_replies_streaming" in answer.text and TOKEN not in answer.text


def test_drain_waits_for_replies_in_flight_and_refuses_new_ones() -> None:
    replies = Replies()
    first = replies.start()
    first.admit()
    drained = threading.Event()
    waiter = threading.Thread(target=lambda: replies.drain(10) and drained.set())
    waiter.start()
    late = replies.start()
    with pytest.raises(Restarting, match="restarting") as refusal:
        late.admit()
    late.failed(refusal.value)
    late.close()
    assert not drained.wait(0.2)  # still waiting for the first reply
    first.close()
    waiter.join(5)
    assert drained.is_set() and replies.active == 0


def test_drain_gives_up_after_its_time() -> None:
    replies = Replies()
    replies.start().admit()
    assert replies.drain(0.05) is False and replies.active == 1


def test_outcomes_are_counted_by_class() -> None:
    replies = Replies()
    for error in (Busy("busy"), None):
        reply = replies.start()
        if error:
            reply.failed(error)
        reply.close()
    page = exposition()[0].decode()
    assert 'chat_replies_total{error="Busy",outcome="error"}' in page
    assert 'chat_replies_total{error="",outcome="stopped"}' in page


def test_the_app_lowers_gradios_idle_queue_polling(tmp_path: Path) -> None:
    """Fails loudly if the pinned Gradio stops reading `sleep_when_free`: the setting would silently do nothing."""
    import app

    settings = load_settings({"DATA_DIR": str(tmp_path), "AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1"}, None)
    queue = app.build(settings)[0]._queue
    assert queue.sleep_when_free == app.QUEUE_IDLE_POLL
    source = inspect.getsource(type(queue).start_processing)
    assert source.count("asyncio.sleep(self.sleep_when_free)") >= 2, "Gradio's queue no longer polls this way"


def test_python_app_py_sets_what_it_built_aside_from_full_collections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`main` freezes what it built before serving, so the collector's full passes skip it (docs/bench.md: they held
    the loop up to 0.29 s each while replies streamed)."""
    import gradio as gr

    import app

    frozen: list[int] = []

    def launch(demo: gr.Blocks, **options: object) -> None:
        frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(gr.Blocks, "launch", launch)
    monkeypatch.setattr(app.signal, "signal", lambda *_: None)  # leave the test process's SIGTERM alone
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AIMLAPI_BASE_URL", "http://127.0.0.1:9/v1")
    try:
        app.main([])
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 100_000, frozen


def test_a_negative_cost_from_a_gateway_is_not_counted_and_does_not_fail_the_reply() -> None:
    """Prometheus counters refuse to go down: `inc(-0.1)` raised, and the finished reply became a notice."""
    before = _sample("chat_spent_usd_total")
    reply = Replies().start()
    reply.finished(replace(RESULT, cost_usd=-0.1))
    reply.close()
    assert _sample("chat_spent_usd_total") == before
    reply = Replies().start()
    reply.finished(replace(RESULT, cost_usd=0.25))
    reply.close()
    assert _sample("chat_spent_usd_total") == before + 0.25


RESULT = ChatResult("hi", "stop", None, None, None, "m", "id", None, None, 0.1, 0)


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0
