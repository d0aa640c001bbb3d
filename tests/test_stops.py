"""web/stops.py: a cancel that names no event (the page's Stop before its join was answered) stops that session and
step's event, whichever of the two reaches the server first; behind the real guard, with Gradio stood in for.
The page itself is tested in Chromium (test_browser.py, `test_stop_pressed_before_the_server_acknowledged_...`)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.asgi_driver import request
from web import stops
from web.guard import RequestGuard

JSON = {"content-type": "application/json"}
UPLOADS = tempfile.gettempdir()


class Gradio:
    """Answers a join with a new event's id and a cancel with success; notes the events cancelled. `running`
    says whether Gradio still holds an event (in `web.stops` it asks Gradio's queue and tasks)."""

    def __init__(self) -> None:
        self.events = 0
        self.cancelled: list[str] = []
        self.running: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = json.loads((await receive())["body"])
        if scope["path"].endswith("/queue/join"):
            self.events += 1
            self.running.add(event := f"e{self.events}")
            answer: dict[str, Any] = {"event_id": event}
        elif scope["path"] == "/gradio_api/cancel" and isinstance(body.get("event_id"), str):
            self.cancelled.append(body["event_id"])
            answer = {"success": True}
        else:
            answer = {"detail": "not found"}
        await send({"type": "http.response.start", "status": 200 if "detail" not in answer else 404, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


@pytest.fixture
def gradio(monkeypatch: pytest.MonkeyPatch) -> Gradio:
    app = Gradio()
    monkeypatch.setattr(stops, "_in_progress", lambda scope, step, event: event in app.running)
    return app


def edge(gradio: Gradio) -> RequestGuard:
    return RequestGuard(stops.EarlyStops(gradio), body_limit=100_000, upload_limit=100_000, upload_folder=UPLOADS)


def post(app: Any, path: str, **body: Any) -> dict[str, Any]:
    answer = asyncio.run(request(app, f"/gradio_api/{path}", json.dumps(body).encode(), JSON))
    assert answer.status == 200, answer
    return json.loads(answer.body)


def test_a_stop_before_its_join_stops_the_event_the_join_makes(gradio: Gradio) -> None:
    app = edge(gradio)
    assert post(app, "cancel", event_id=None, session_hash="s", fn_index=3) == {"success": True}
    assert post(app, "queue/join", data=[], session_hash="s", fn_index=3) == {"event_id": "e1"}
    assert gradio.cancelled == ["e1"]
    post(app, "queue/join", data=[], session_hash="s", fn_index=3)  # the next message is not stopped
    assert gradio.cancelled == ["e1"]


def test_a_stop_after_its_join_stops_the_event_if_it_still_runs_and_else_waits_for_the_next(gradio: Gradio) -> None:
    app = edge(gradio)
    post(app, "queue/join", data=[], session_hash="s", fn_index=3)
    post(app, "cancel", event_id=None, session_hash="s", fn_index=3)
    assert gradio.cancelled == ["e1"]
    post(app, "queue/join", data=[], session_hash="s", fn_index=3)  # e2, which ends before the next stop
    gradio.running.clear()
    post(app, "cancel", event_id=None, session_hash="s", fn_index=3)  # meant for a message not yet joined
    post(app, "queue/join", data=[], session_hash="s", fn_index=3)
    assert gradio.cancelled == ["e1", "e3"]


def test_a_stop_pairs_only_with_its_own_session_and_step_and_only_for_a_while(
    gradio: Gradio, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = edge(gradio)
    post(app, "cancel", event_id=None, session_hash="s", fn_index=3)
    post(app, "queue/join", data=[], session_hash="s", fn_index=4)
    post(app, "queue/join", data=[], session_hash="t", fn_index=3)
    assert gradio.cancelled == []
    now = stops.time.monotonic()
    monkeypatch.setattr(stops.time, "monotonic", lambda: now + stops.KEPT_S + 1)
    post(app, "queue/join", data=[], session_hash="s", fn_index=3)
    assert gradio.cancelled == []


def test_stops_kept_are_bounded_oldest_first(gradio: Gradio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stops, "MAX_KEPT", 3)
    app = edge(gradio)
    for session in "abcd":
        post(app, "cancel", event_id=None, session_hash=session, fn_index=3)
    for session in "abcd":
        post(app, "queue/join", data=[], session_hash=session, fn_index=3)
    assert gradio.cancelled == ["e2", "e3", "e4"]  # a's stop was forgotten


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=8,
    )
)
def test_any_body_passes_on_untouched_unless_it_names_a_session_and_step(body: Any) -> None:
    """Anything the guard lets through that is not a cancel naming a session and a step reaches Gradio as sent."""
    seen: list[bytes] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    app = RequestGuard(stops.EarlyStops(recording), body_limit=100_000, upload_limit=100_000, upload_folder=UPLOADS)
    sent = json.dumps(body).encode()
    answer = asyncio.run(request(app, "/gradio_api/cancel", sent, JSON))
    names_step = stops._step(body) is not None and isinstance(body, dict) and body.get("event_id") is None
    if answer.status == 200 and not names_step:
        assert seen == [sent]
