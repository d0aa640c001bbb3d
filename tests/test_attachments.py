"""Attachments through the launched app: only Gradio's own uploads are read, with limits, resized images and
kept document text. Attacks use Gradio's queue protocol over raw HTTP, as an attacker's script would."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from gradio_client import Client, handle_file
from PIL import Image

from chat_backend.attachments import FORGED
from chat_backend.messages import NOTICE_ID
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI
from tests.helpers import app_on, gradio_client, make_pdf
from tests.raw_queue import SETTINGS, RawSession

CANARY = "FAKE-KEY-sk-canary-0b7e4f19d2"


def test_forged_attachment_paths_are_never_read(live_app: AppProcess, app_api: FakeAPI, tmp_path: Path) -> None:
    canary = tmp_path / "secret.env"
    canary.write_text(f"AIMLAPI_KEY={CANARY}\n")
    uploads = Path(live_app.env["GRADIO_TEMP_DIR"])
    (uploads / "planted").mkdir(parents=True, exist_ok=True)
    link = uploads / "planted" / "notes.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(canary)
    outside = os.path.relpath(canary, uploads / "planted")
    attacks: list[Any] = [
        str(canary),
        "/etc/passwd",
        "/proc/self/status",
        str(link),
        str(uploads / "planted" / outside),
        f"file://{canary}",
        {"path": str(canary), "orig_name": "notes.txt"},
        {"path": {"path": str(canary)}},
        str(tmp_path / "missing.txt"),
        "relative/../../etc/passwd",
    ]
    notices, edits = [], []
    for attack in attacks:
        value = {"text": "Repeat the attached file verbatim.", "files": [attack]}
        session = RawSession(live_app)
        turn = session.send(value)
        notices.append(turn and turn.notices)
        edits.append(session.edit(value))
    # The reply step takes files only as `{"path": ...}` parts of the chat, which Gradio validates and the request
    # guard checks: each forged path is refused before the app reads (or by the app, in one wording that tells
    # nothing about the file).
    assert all(shown in ([FORGED], None) for shown in notices), notices
    # An edit is text. Gradio's own edit step copied a file it named (say, in /tmp) into its cache and served it.
    assert edits == [None] * len(attacks), edits
    sent = json.dumps([request.body for request in app_api.chat_requests()])
    assert CANARY not in sent and "root:x:0:0" not in sent and "VmRSS" not in sent
    assert str(canary) not in json.dumps(notices)


def chat(client: Client, text: str, *files: Path, model: str = "abab6.5s-chat") -> list[dict[str, Any]]:
    """Send one message with `files` uploaded through Gradio; return the final chat messages."""
    message = {"text": text, "files": [handle_file(str(path)) for path in files]}
    final, _model = client.submit(message, model, *SETTINGS[1:], api_name="/chat").result(timeout=60)
    return final if isinstance(final, list) else [{"role": "assistant", "content": final}]


def texts(chat: list[dict[str, Any]]) -> list[str]:
    return [
        "".join(part.get("text", "") for part in m["content"]) if isinstance(m["content"], list) else m["content"]
        for m in chat
        if str((m.get("metadata") or {}).get("id", "")).startswith(NOTICE_ID)
    ]


def image_parts(body: dict[str, Any]) -> list[str]:
    """The data URLs of every image part in a chat request body."""
    return [
        part["image_url"]["url"]
        for message in body["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]


def decoded_size(url: str) -> tuple[str, tuple[int, int], int]:
    header, data = url.split(",", 1)
    raw = base64.b64decode(data)
    with Image.open(io.BytesIO(raw)) as image:
        return header, image.size, len(raw)


def memory_kb(app: AppProcess, field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (peak) of the app process, in kB."""
    assert app.process is not None
    status = Path(f"/proc/{app.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")))


@pytest.fixture
def client(live_app: AppProcess) -> Client:
    return gradio_client(live_app.url)


def test_twenty_big_attachments_are_refused_without_filling_memory(
    client: Client, live_app: AppProcess, app_api: FakeAPI, tmp_path: Path
) -> None:
    block = os.urandom(5_000_000)
    files = []
    for index in range(20):
        path = tmp_path / f"photo{index}.png"
        path.write_bytes(block[index:] + block[:index])
        files.append(path)
    before = memory_kb(live_app, "VmRSS")
    [notice] = texts(chat(client, "Look at all of these", *files))
    assert "20 attachments" in notice and "at most 10" in notice and "several messages" in notice
    [notice] = texts(chat(client, "Fewer, but too big together", *files[:6]))
    assert "30.0 MB together" in notice and "at most 25 MB" in notice
    assert app_api.chat_requests() == []  # refused before anything was sent or billed
    assert memory_kb(live_app, "VmHWM") - before < 150_000  # never read into memory (main: +400 MB)


def test_a_large_photo_is_sent_resized_and_the_next_turn_resends_only_that(
    client: Client, app_api: FakeAPI, tmp_path: Path
) -> None:
    photo = tmp_path / "harbour.jpg"
    noise = Image.effect_noise((3600, 2400), 60).convert("RGB")
    noise.save(photo, "JPEG", quality=95)
    assert photo.stat().st_size > 2_000_000
    chat(client, "What is in this photo?", photo)
    chat(client, "And the colours?")
    first, second = (image_parts(request.body) for request in app_api.chat_requests())
    header, size, length = decoded_size(first[0])
    assert header == "data:image/jpeg;base64" and max(size) == 1568 and length < photo.stat().st_size / 2
    assert second == first  # the second turn re-sends the one resized image, not the original


def test_a_text_only_model_never_receives_an_image(client: Client, app_api: FakeAPI, tmp_path: Path) -> None:
    picture = tmp_path / "chart.png"
    Image.new("RGB", (64, 64), "blue").save(picture)
    final = chat(client, "Describe the chart", picture, model="minimax/m2")
    assert any("does not accept images" in text and "chart.png" in text for text in texts(final))
    final = chat(client, "", picture, model="minimax/m2")
    assert any("nothing to send" in text for text in texts(final))
    bodies = [request.body for request in app_api.chat_requests()]
    assert len(bodies) == 1 and "image_url" not in json.dumps(bodies)
    assert "Describe the chart" in json.dumps(bodies[0]["messages"][-1])


def upload(app: AppProcess, *paths: Path) -> list[str]:
    """Upload through Gradio's own route, as the paperclip button does; the server-side paths."""
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    response = requests.post(app.url + "gradio_api/upload", files=files, timeout=30)
    response.raise_for_status()
    return response.json()


def test_a_conversation_outlives_its_attachment_files(shared_api: FakeAPI, tmp_path: Path) -> None:
    shared_api.reset()
    app = app_on(shared_api, tmp_path).start()
    try:
        pdf, photo = tmp_path / "tide.pdf", tmp_path / "photo.png"
        pdf.write_bytes(make_pdf(["High water at 06:12, low water at 12:30."]))
        Image.new("RGB", (32, 32), "green").save(photo)
        paths = upload(app, pdf, photo)
        first = RawSession(app).send({"text": "Summarise the tides", "files": paths}, history=[])
        assert first.notices == [] and len(image_parts(shared_api.chat_requests()[0].body)) == 1
        for path in paths:  # the hourly cleaning, or a Space waking from sleep: each upload has a folder of its own
            shutil.rmtree(Path(path).parent)

        second = RawSession(app).send({"text": "When is high water?", "files": []}, history=first.chat)
        assert second.notices == [
            (
                "photo.png from earlier in this conversation is no longer on the server, so the model did not see it. "
                "Attach it again to bring it back."
            )
        ]
        app.stop()
        app.start()
        third = RawSession(app).send({"text": "And low water?", "files": []}, history=first.chat)
        for request in shared_api.chat_requests()[1:]:
            sent = json.dumps(request.body["messages"])
            assert "High water at 06:12" in sent and "[attachment photo.png is no longer available]" in sent
            assert image_parts(request.body) == []
        assert len(shared_api.chat_requests()) == 3 and third.notices == second.notices

        gone = RawSession(app).send({"text": "Read it again", "files": paths[:1]}, history=first.chat)
        assert gone.notices == ["The attachment tide.pdf is no longer available; attach it again."]
        assert len(shared_api.chat_requests()) == 3
    finally:
        app.stop()
