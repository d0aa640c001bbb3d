"""Attacks from issue 17 through raw HTTP against the launched app: the requests an attacker would send."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import PIL.Image
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from chat_backend.attachments import PATH_MAX, Attachments, Forged
from chat_backend.config import load_settings
from tests.app_process import ROOT, AppProcess, make_app
from tests.fake_api import FakeAPI
from tests.helpers import app_on, cache_bytes, chat_step, chat_value, event_index, raw_post, rss_mb, served_urls
from web.guard import MAX_JSON_DEPTH, inside, path_values
from web.icons import MANIFEST_SIZES


def run(app: AppProcess, name: str, data: list[Any], session: str = "attacker", **kwargs: Any) -> requests.Response:
    """POST /gradio_api/run/predict for a non-queued UI event, as the page does."""
    body = {"data": data, "fn_index": event_index(app, name), "session_hash": session}
    return requests.post(f"{app.url}gradio_api/run/predict", json=body, timeout=30, **kwargs)


def secret_files(tmp_path: Path) -> dict[str, Path]:
    """Files an attacker wants: the app's code, git's config, and a file in the system temp directory
    (where exports used to be written)."""
    git = ROOT / ".git"
    stray = Path(tempfile.mkdtemp(prefix="chat-export-")) / "conversation.md"
    stray.write_text("another visitor's conversation", encoding="utf-8")
    return {"app.py": ROOT / "app.py", "git": git if git.is_file() else git / "config", "export": stray}


# Saved conversations come from the browser's storage with no data model, so Gradio checks none of these shapes.
FORGED_SHAPES = [
    lambda path: {"path": path},
    lambda path: [{"type": "file", "file": {"path": path}}],
    lambda path: {"file": {"path": path}},
    lambda path: {"path": f"{tempfile.gettempdir()}/gradio/../..{path}"},
]


@pytest.mark.parametrize("shape", range(len(FORGED_SHAPES)))
def test_the_conversation_loader_serves_no_file_outside_the_uploads(
    live_app: AppProcess, tmp_path: Path, shape: int
) -> None:
    for name, target in secret_files(tmp_path).items():
        conversation = [{"role": "user", "content": FORGED_SHAPES[shape](str(target))}]
        reply = run(live_app, "_load_conversation", [0, [conversation]])
        urls = served_urls(reply)
        for url in urls:
            fetched = requests.get(url, timeout=10)
            assert not (fetched.ok and fetched.content == target.read_bytes()), f"{name} was served at {url}"
        assert not urls, f"{name}: {reply.text[:300]}"


def test_the_apps_own_files_still_serve(live_app: AppProcess) -> None:
    """The blocked paths cover the app's folder, yet its favicon, avatar and example attachment still load."""
    assert requests.get(f"{live_app.url}favicon.ico", timeout=10).ok
    config = requests.get(f"{live_app.url}config", timeout=10)
    urls = set(re.findall(r'"url":\s*"([^"]*/file=[^"]*)"', config.text))
    assert any(url.endswith("avatar-assistant.png") for url in urls)
    assert any(url.endswith("harbour-microgrid-report.md") for url in urls)
    assert all(requests.get(url, timeout=10).ok for url in urls)


def test_a_virtual_environment_in_the_apps_folder_still_serves_gradios_icons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m venv .venv` in the app's folder puts Gradio there, and the page loads its icons from Gradio's
    package: blocking the whole `.venv` broke them (found running README's commands that way). Gradio's folder
    stays served; the app's code, `.env`, `.git` and tests stay blocked."""
    import app

    folder = tmp_path / "minimax-chat"
    package = folder / ".venv" / "lib" / "python3.11" / "site-packages" / "gradio"
    for made in (package / "icons", folder / ".git", folder / "tests", folder / "chat_backend"):
        made.mkdir(parents=True)
    for written in (package / "__init__.py", package / "icons" / "plus.svg", folder / ".env", folder / "app.py"):
        written.write_text("")
    monkeypatch.setattr(app.gr, "__file__", str(package / "__init__.py"))
    blocked = app.private_paths(load_settings({"DATA_DIR": str(tmp_path / "data")}, None), folder)
    assert not [path for path in blocked if inside(str(package / "icons" / "plus.svg"), path)], blocked
    for private in (".env", ".git", "tests", "chat_backend", "app.py"):
        assert [path for path in blocked if inside(str(folder / private), path)], private


def test_a_saved_conversation_with_an_upload_still_opens(live_app: AppProcess) -> None:
    """The guards refuse forged paths, not real ones: an uploaded file's conversation opens and links the file."""
    uploaded = requests.post(
        f"{live_app.url}gradio_api/upload", files={"files": ("notes.txt", b"tide tables")}, timeout=30
    ).json()[0]
    conversation = [
        {"role": "user", "content": [{"type": "file", "file": {"path": uploaded}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
    ]
    reply = run(live_app, "_load_conversation", [0, [conversation]], session="returning-visitor")
    assert reply.ok and "Noted." in reply.text, reply.text[:300]
    assert [requests.get(url, timeout=10).content for url in served_urls(reply)] == [b"tide tables"]


def test_thirty_sessions_of_twenty_megabyte_chats_are_refused_and_memory_stays_put(live_app: AppProcess) -> None:
    index = chat_step(live_app)
    chat = json.dumps(chat_value(20_000_000)).encode()
    before = rss_mb(live_app)
    for number in range(30):
        body = b'{"data": [%s], "fn_index": %d, "session_hash": "fill-%d"}' % (chat, index, number)
        assert raw_post(live_app, "/gradio_api/run/predict", body, chunked=number % 2 == 1) == 413
    assert rss_mb(live_app) - before < 60


def test_a_long_but_plausible_chat_is_still_accepted(live_app: AppProcess) -> None:
    edit = {"index": 0, "value": "shorter", "previous_value": "lorem"}
    body = {"data": [chat_value(1_000_000)], "fn_index": chat_step(live_app), "session_hash": "x", "event_data": edit}
    reply = requests.post(f"{live_app.url}gradio_api/run/predict", json=body, timeout=30)
    assert reply.ok, reply.text[:300]


@pytest.mark.parametrize("depth", [5_000, MAX_JSON_DEPTH, MAX_JSON_DEPTH - 10])
def test_json_nested_too_deep_to_judge_is_refused_not_a_server_error(live_app: AppProcess, depth: int) -> None:
    """A plain 400 for what no page sends (5,000 deep was a 500 and a traceback in the log, and any depth the guard
    would not walk would go unjudged); shallower nesting passes the guard (Gradio then refuses this value itself)."""
    nested = "[" * depth + "]" * depth
    body = b'{"data": [%s], "fn_index": %d, "session_hash": "deep"}' % (nested.encode(), chat_step(live_app))
    status = raw_post(live_app, "/gradio_api/run/predict", body, chunked=False)
    assert status == 400 if depth + 2 > MAX_JSON_DEPTH else status != 400


def test_the_refusal_says_what_the_limit_is(live_app: AppProcess) -> None:
    reply = requests.post(f"{live_app.url}gradio_api/run/predict", data=b"x" * 6_000_000, timeout=30)
    assert reply.status_code == 413 and "at most 5 MB" in reply.json()["detail"]


@pytest.fixture(scope="module")
def export_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """An app of its own, so the export rate other tests use is untouched: cache cleared every 3 s, 1 MB files."""
    folder = tmp_path_factory.mktemp("export-app")
    app = app_on(
        shared_api, folder, CACHE_CLEAR_MINUTES="0.05", MAX_ATTACHMENT_MB="1", MAX_MESSAGE_ATTACHMENTS_MB="5"
    ).start()
    yield app
    app.stop()


def exported_paths(reply: requests.Response) -> list[Path]:
    return [Path(output["value"]["path"]) for output in reply.json()["data"]]


def test_exports_land_only_in_the_cache_and_are_cleared_with_it(export_app: AppProcess) -> None:
    temp = Path(tempfile.gettempdir())
    strays = set(temp.glob("chat-export-*"))
    reply = run(export_app, "export", [chat_value(1000)], session="export-clean")
    paths = exported_paths(reply)
    assert paths and all(path.is_relative_to(export_app.env["GRADIO_TEMP_DIR"]) and path.exists() for path in paths)
    assert set(temp.glob("chat-export-*")) == strays
    deadline = time.monotonic() + 30
    while any(path.exists() for path in paths) and time.monotonic() < deadline:
        time.sleep(0.5)  # the cleaner runs on its own schedule; poll for its effect
    assert not any(path.exists() for path in paths)


def test_ten_big_exports_are_bounded_in_rate_and_disk(export_app: AppProcess) -> None:
    chat = chat_value(4_000_000)
    before = cache_bytes(export_app)
    replies = [run(export_app, "export", [chat], session=f"export-{n}") for n in range(10)]
    done = [reply for reply in replies if reply.ok and reply.json().get("data")]
    assert 1 <= len(done) <= 6  # EXPORTS_PER_MINUTE, the test above included
    assert all("Too many exports" in reply.text for reply in replies if reply not in done)
    # One Markdown and one JSON copy, shared; two if the export's minute-stamp changed during the test.
    assert cache_bytes(export_app) - before < 2 * 2 * 4_000_000 + 1_000_000


def test_an_upload_is_bounded_by_the_attachment_limit_even_when_streamed(export_app: AppProcess) -> None:
    """Gradio bounds each file (MAX_ATTACHMENT_MB, 1 here) but not how many: 8 files of 0.9 MB pass its check;
    the guard bounds the request by one message's attachments (MAX_MESSAGE_ATTACHMENTS_MB, 5 here) + 1 MB."""

    def multipart(files: int) -> Iterator[bytes]:  # a generator, so requests sends it chunked, with no length
        for number in range(files):
            yield b'--b\r\nContent-Disposition: form-data; name="files"; filename="%d.txt"\r\n\r\n' % number
            yield b"x" * 900_000 + b"\r\n"
        yield b"--b--\r\n"

    url, kind = f"{export_app.url}gradio_api/upload", {"content-type": "multipart/form-data; boundary=b"}
    assert requests.post(url, data=multipart(2), headers=kind, timeout=30).ok
    refused = requests.post(url, data=multipart(8), headers=kind, timeout=30)
    assert refused.status_code == 413 and "at most 6 MB" in refused.text  # the message as text, as the page shows it
    assert requests.post(url, data=multipart(1), headers=kind, timeout=30).ok


@given(st.lists(st.sampled_from(["..", ".", "a", "b", "", "/", "~", "%2e%2e"]), max_size=8))
def test_inside_never_admits_a_path_that_resolves_elsewhere(parts: list[str]) -> None:
    folder = tempfile.gettempdir() + "/gradio"
    candidate = folder + "/" + "/".join(parts)
    resolved = os.path.realpath(candidate)
    assert inside(candidate, folder) == (resolved == folder or resolved.startswith(folder + "/"))
    assert not inside("http://example.com" + candidate, folder)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["path", "file", "x"]), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(JSON)
def test_path_values_finds_every_path_value_at_any_depth(data: Any) -> None:
    def every(value: Any) -> list[Any]:
        if isinstance(value, dict):
            own = [value["path"]] if "path" in value else []
            return own + [path for item in value.values() for path in every(item)]
        return [path for item in value for path in every(item)] if isinstance(value, list) else []

    assert sorted(map(repr, path_values(data))) == sorted(map(repr, every(json.loads(json.dumps(data)))))


def test_a_symlink_in_the_upload_folder_does_not_lead_out(tmp_path: Path) -> None:
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "link").symlink_to(ROOT / "app.py")
    assert not inside(str(tmp_path / "uploads" / "link"), str(tmp_path / "uploads"))
    assert sorted(map(repr, path_values({"a": [{"path": "x"}, {"file": {"path": "y"}}], "path": 3}))) == [
        "'x'",
        "'y'",
        "3",
    ]


def login(app: AppProcess, password: str, source: str = "127.0.0.2", forwarded: str = "") -> tuple[int, str]:
    """POST /login as the login form does, from the loopback address `source` (uvicorn trusts X-Forwarded-For
    from 127.0.0.1 only, as a local proxy's, so an attacker is played from 127.0.0.2)."""
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10, source_address=(source, 0))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    headers |= {"x-forwarded-for": forwarded} if forwarded else {}
    try:
        connection.request("POST", "/login", urlencode({"username": "ada", "password": password}), headers)
        reply = connection.getresponse()
        return reply.status, reply.read().decode()
    finally:
        connection.close()


def test_failed_logins_are_throttled_per_address(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "app.log",
        APP_USERNAME="ada",
        APP_PASSWORD="lovelace-1815",
        LOGIN_WINDOW_SECONDS="5",
        AIMLAPI_BASE_URL=shared_api.base_url,
    ).start()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:  # 300 guesses as fast as one client can send them
            statuses = list(pool.map(lambda n: login(app, f"guess-{n}", forwarded=f"10.0.0.{n % 250}")[0], range(300)))
        windows = (time.monotonic() - started) / 5 + 1  # on a slow machine the 5 s window may slide once or twice
        assert set(statuses) == {400, 429} and statuses.count(400) <= 5 * windows  # forged X-Forwarded-For: no help
        status, text = login(app, "lovelace-1815")
        assert status == 429 and "Too many failed logins" in text
        assert login(app, "lovelace-1815", source="127.0.0.3")[0] == 200  # another address is unaffected
        deadline = time.monotonic() + 10
        while login(app, "lovelace-1815")[0] == 429 and time.monotonic() < deadline:
            time.sleep(0.5)  # the window is time itself: poll until it has passed
        assert login(app, "lovelace-1815")[0] == 200
    finally:
        app.stop()


@pytest.mark.parametrize(
    "content_type", ["Application/JSON", "APPLICATION/JSON; charset=utf-8", "application/vnd.a+JSON"]
)
def test_a_forged_path_is_refused_whatever_the_case_of_its_content_type(
    live_app: AppProcess, tmp_path: Path, content_type: str
) -> None:
    """FastAPI reads any `application/json` or `…+json` body as JSON regardless of case (media types are
    case-insensitive), so the guard must check those bodies too."""
    stray = Path(tempfile.mkdtemp(prefix="chat-secret-")) / "secret.txt"
    stray.write_text("another program's temporary file", encoding="utf-8")
    conversation = [{"role": "user", "content": {"path": str(stray)}}]
    body = {"data": [0, [conversation]], "fn_index": event_index(live_app, "_load_conversation"), "session_hash": "x"}
    reply = requests.post(
        f"{live_app.url}gradio_api/run/predict",
        data=json.dumps(body),
        headers={"content-type": content_type},
        timeout=30,
    )
    for url in served_urls(reply):
        fetched = requests.get(url, timeout=10)
        assert not (fetched.ok and fetched.content == stray.read_bytes()), f"{stray} was served at {url}"
    assert reply.status_code == 400, reply.text[:300]


@pytest.mark.parametrize("components", [300_000, 2_100])
def test_a_path_longer_than_any_file_can_have_is_refused_unresolved(live_app: AppProcess, components: int) -> None:
    """Resolving 300,000 components took the guard tens of seconds on the event loop, stalling every visitor; a
    path over PATH_MAX (2,100 components is just over) names no file, so it is refused before any resolving."""
    uploads = live_app.env["GRADIO_TEMP_DIR"]
    path = f"{uploads}/" + "a/" * components
    assert len(path) > PATH_MAX and not inside(path, uploads)
    with pytest.raises(Forged):
        Attachments.under([uploads]).resolve(path)
    conversation = [{"role": "user", "content": {"path": path}}]
    assert run(live_app, "_load_conversation", [0, [conversation]]).status_code == 400


@pytest.mark.parametrize("page", ["monitoring", "monitoring/summary", "monitoring/not-the-key"])
def test_gradios_monitoring_pages_are_closed_by_default(live_app: AppProcess, page: str) -> None:
    """Gradio opens /monitoring to anyone unless told otherwise: its summary lists every event's timings."""
    reply = requests.get(f"{live_app.url}{page}", timeout=10)
    assert reply.status_code == 403 and "functions" not in reply.text, reply.text[:200]


def test_the_owner_can_open_the_monitoring_pages(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, MONITORING="1").start()
    try:
        assert requests.get(f"{app.url}monitoring/summary", timeout=10).json() == {"functions": {}}
    finally:
        app.stop()


def test_the_install_icons_are_the_manifests_sizes_only(shared_api: FakeAPI, tmp_path: Path) -> None:
    """Gradio resized the favicon to any size asked, on the event loop: /pwa_icon/4000 held every visitor 3 s, and
    0 or -1 was a 500 with a traceback (review 8, F1). The sizes its manifest names still load, as PNGs."""
    app = app_on(shared_api, tmp_path).start()
    try:
        manifest = requests.get(f"{app.url}manifest.json", timeout=10).json()
        assert [icon["src"] for icon in manifest["icons"]] == [f"/pwa_icon/{size}" for size in MANIFEST_SIZES]
        for size in MANIFEST_SIZES:
            for _ in range(2):  # drawn once, then from memory
                reply = requests.get(f"{app.url}pwa_icon/{size}", timeout=10)
                assert reply.ok and PIL.Image.open(io.BytesIO(reply.content)).size == (int(size), int(size))
        for size in ["4000", "50000", "0", "-1", "193", "abc"]:
            assert requests.get(f"{app.url}pwa_icon/{size}", timeout=10).status_code == 404
            # Gradio's route also reads the size from the query (review 8's second look: 4000 took 3.3 s there)
            assert requests.get(f"{app.url}pwa_icon", params={"size": size}, timeout=10).status_code == 404
        assert requests.get(f"{app.url}pwa_icon", params={"size": "192"}, timeout=10).ok
        assert requests.get(f"{app.url}pwa_icon", timeout=10).ok  # the favicon as it is
        assert "Traceback" not in app.logs()
    finally:
        app.stop()
