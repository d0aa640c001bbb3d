"""Message rates count only what was sent: a reproduction of a reported defect (it failed before its fix), beside
test_quotas.py."""

from __future__ import annotations

from pathlib import Path

from tests.fake_api import FakeAPI
from tests.helpers import DEFAULTS, app_on, gradio_client


def test_a_message_the_app_refuses_before_sending_does_not_count_against_the_session_rate(
    shared_api: FakeAPI, tmp_path: Path
) -> None:
    """README: "A refused message never counts against the sender's rate." A temperature above the model's
    maximum is refused by the app (nothing is sent), yet it used up the session's messages."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path, RATE_LIMIT_PER_SESSION="2").start()
    try:
        client = gradio_client(app.url)
        settings = {**DEFAULTS, "model": "MiniMax-Text-01", "temperature": 1.5}
        refused = [
            client.submit({"text": f"too hot {n}", "files": []}, *settings.values(), api_name="/chat").result(
                timeout=30
            )
            for n in range(2)
        ]
        fine = {**DEFAULTS, "model": "MiniMax-Text-01", "temperature": 0.5}
        after, _ = client.submit({"text": "cooler now", "files": []}, *fine.values(), api_name="/chat").result(
            timeout=30
        )
    finally:
        app.stop()
    assert all("Temperature" in str(answer) or "temperature" in str(answer) for answer, _ in refused)
    assert not any("too hot" in str(r.body) for r in shared_api.chat_requests())  # nothing sent for those
    assert "Hello from the stand-in." in str(after), f"refused messages used up the rate: {after}"
