"""Abuse limits, through the launched app's programmatic API (the same path a script would take)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.test_app_api import DEFAULTS, chat, notices
from tests.test_messages import make_pdf


def start_app(shared_api: FakeAPI, folder: Path, **env: str) -> AppProcess:
    return AppProcess(folder / "app.log", AIMLAPI_BASE_URL=shared_api.base_url, AIMLAPI_KEY="limits", **env).start()


@pytest.fixture(scope="module")
def limited_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """Sizes and the upstream cap set small; message rates off (they have their own app below)."""
    app = start_app(shared_api, tmp_path_factory.mktemp("limited"), MAX_MESSAGE_CHARS="200",
                    MAX_ATTACHMENT_MB="0.002", MAX_PDF_PAGES="1", MAX_HISTORY_MESSAGES="4", MAX_UPSTREAM_CALLS="1",
                    RATE_LIMIT_PER_SESSION="0", RATE_LIMIT_PER_ADDRESS="0")
    yield app
    app.stop()


def error_notice(messages: list[dict]) -> str:
    [notice] = [n for n in notices(messages) if "error" in n["metadata"]["id"]]
    return notice["content"]


def test_message_rates_per_session_and_per_address(shared_api: FakeAPI, tmp_path: Path) -> None:
    shared_api.reset()
    app = start_app(shared_api, tmp_path, RATE_LIMIT_PER_SESSION="3", RATE_LIMIT_PER_ADDRESS="5")
    try:
        first = Client(app.url, verbose=False)
        for turn in range(3):
            assert not [n for n in notices(chat(first, f"hello {turn}")[1]) if "error" in n["metadata"]["id"]]
        assert "at most 3 a minute" in error_notice(chat(first, "one too many")[1])
        second = Client(app.url, verbose=False)  # a new session from the same address
        for turn in range(2):
            chat(second, f"second {turn}")
        notice = error_notice(chat(second, "over the address limit")[1])
        assert "your network address" in notice and "at most 5 a minute" in notice and "Wait" in notice
    finally:
        app.stop()
    sent = [r.body["messages"][-1]["content"] for r in shared_api.chat_requests()]
    assert "one too many" not in sent and "over the address limit" not in sent and len(sent) == 5


def test_an_overlong_message_is_refused_with_the_limit(limited_app: AppProcess, app_api: FakeAPI) -> None:
    notice = error_notice(chat(Client(limited_app.url, verbose=False), "x" * 201)[1])
    assert "201 characters; the limit is 200" in notice and app_api.chat_requests() == []


def test_a_pdf_with_too_many_pages_is_refused(limited_app: AppProcess, app_api: FakeAPI, tmp_path: Path) -> None:
    pdf = tmp_path / "two-pages.pdf"
    pdf.write_bytes(make_pdf(["one", "two"]))
    client = Client(limited_app.url, verbose=False)
    job = client.submit({"text": "read", "files": [handle_file(str(pdf))]}, *DEFAULTS.values(), api_name="/chat")
    assert "PDFs may have at most 1" in error_notice(job.result(timeout=30)[0])  # (messages, Model output)
    assert app_api.chat_requests() == []


def test_an_oversized_attachment_is_refused_at_upload(limited_app: AppProcess, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 5_000)
    client = Client(limited_app.url, verbose=False)
    with pytest.raises(Exception, match="(?i)too large|size"):
        client.submit({"text": "read", "files": [handle_file(str(big))]}, *DEFAULTS.values(), api_name="/chat").result(
            timeout=30)


def test_only_the_newest_messages_go_upstream(limited_app: AppProcess, app_api: FakeAPI) -> None:
    client = Client(limited_app.url, verbose=False)
    for turn in range(4):
        chat(client, f"turn {turn}")
    _, final = chat(client, "turn 4")
    sent = [m for m in app_api.chat_requests()[-1].body["messages"] if m["role"] != "system"]
    assert len(sent) <= 4 and sent[-1]["content"] == "turn 4"
    assert any("Older messages left out" in n["metadata"]["title"] for n in notices(final))


def test_the_upstream_cap_answers_busy_instead_of_waiting(limited_app: AppProcess, app_api: FakeAPI) -> None:
    app_api.script_for("slow one", Reply(text=" ".join(f"w{i}" for i in range(60)), delay=0.03))
    slow = threading.Thread(target=chat, args=(Client(limited_app.url, verbose=False), "slow one"))
    slow.start()
    app_api.wait_for_message("slow one")
    notice = error_notice(chat(Client(limited_app.url, verbose=False), "while busy")[1])
    slow.join(30)
    assert "maximum of 1 messages at once" in notice
    assert chat(Client(limited_app.url, verbose=False), "after")[1][0]["content"] == "Hello from the stand-in."


def test_the_owner_can_hide_the_programmatic_api(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = start_app(shared_api, tmp_path, HIDE_API="1")
    try:
        client = Client(app.url, verbose=False)
        assert "/chat" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        with pytest.raises(ValueError, match="Cannot find a function"):
            client.predict({"text": "hi", "files": []}, *DEFAULTS.values(), api_name="/chat")
    finally:
        app.stop()
