"""How the app serves: as a Space does it, offline, through the API from code, and the README's own commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from gradio_client import Client

from tests.app_process import ROOT, AppProcess
from tests.fake_api import FakeAPI

SPACE_HOST = "someone-minimax-chat.hf.space"
PROXY_HEADERS = {"x-forwarded-for": "203.0.113.7, 10.0.0.1", "x-forwarded-proto": "https", "x-forwarded-host": SPACE_HOST}


def test_as_on_a_space_it_binds_every_interface_and_links_files_through_the_proxy(
        shared_api: FakeAPI, tmp_path: Path) -> None:
    """What a Space sets: SPACE_ID, SPACE_HOST and SYSTEM=spaces (Gradio then serves with its Spaces reloader), the port (GRADIO_SERVER_PORT, as AppProcess does), and a proxy
    in front that speaks https and adds X-Forwarded-*: file links must come back as https on the Space's host."""
    app = AppProcess(tmp_path / "app.log", SPACE_ID="someone/minimax-chat", SPACE_HOST=SPACE_HOST, SYSTEM="spaces",
                     AIMLAPI_BASE_URL=shared_api.base_url, GRADIO_TEMP_DIR=str(tmp_path / "gradio")).start()
    try:
        assert f"http://0.0.0.0:{app.port}" in app.logs()
        config = requests.get(f"{app.url}config", headers=PROXY_HEADERS, timeout=10).text
        urls = re.findall(r'"url":\s*"([^"]*/file=[^"]*)"', config)
        assert urls and all(url.startswith(f"https://{SPACE_HOST}/") for url in urls)
        assert requests.get(urls[0].replace(f"https://{SPACE_HOST}/", app.url), timeout=10).ok
    finally:
        app.stop()


def test_a_saved_conversation_still_opens_after_a_restart_emptied_the_cache(live_app: AppProcess) -> None:
    """A Space that slept wakes with an empty cache while the browser kept its conversations and their links."""
    config = requests.get(f"{live_app.url}config", timeout=10).json()
    loader = next(e["id"] for e in config["dependencies"] if e.get("api_name") == "_load_conversation")
    gone = str(Path(live_app.env["GRADIO_TEMP_DIR"]) / ("0" * 64) / "tide.pdf")
    conversation = [{"role": "user", "content": [{"type": "file", "file": {"path": gone}}]},
                    {"role": "user", "content": [{"type": "text", "text": "Summarise it"}]},
                    {"role": "assistant", "content": [{"type": "text", "text": "It is about tides."}]}]
    body = {"data": [0, [conversation]], "fn_index": loader, "session_hash": "woke-up"}
    reply = requests.post(f"{live_app.url}gradio_api/run/predict", json=body, timeout=30)
    assert reply.ok, reply.text[:300]
    assert "It is about tides." in reply.text


def test_the_front_matter_declares_the_python_that_runs_the_tests() -> None:
    """Spaces run the front matter's python_version (3.10 when unset, where `datetime.UTC` does not exist)."""
    front = (ROOT / "README.md").read_text(encoding="utf-8").split("---")[1]
    declared = re.search(r"^python_version:\s*\"?([0-9.]+)\"?\s*$", front, re.M)
    assert declared and declared.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.mark.parametrize("how", ["--offline", "OFFLINE=1"])
def test_offline_mode_answers_a_bare_api_call_with_a_canned_reply(how: str, tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "app.log", **({"OFFLINE": "1"} if how == "OFFLINE=1" else {}))
    app.command += ["--offline"] if how == "--offline" else []
    app.env.pop("AIMLAPI_BASE_URL", None)  # no key, no base URL: nothing but the app itself
    app.start()
    try:
        reply = Client(app.url, verbose=False).predict({"text": "Hello there", "files": []}, api_name="/chat")
        assert "canned reply" in reply[0]["content"] and "Hello there" in reply[0]["content"]
        assert "offline" in app.logs()
    finally:
        app.stop()


def chat_request(client: Client, api: FakeAPI, **settings: Any) -> dict[str, Any]:
    """The body the API received for one message sent with `settings` (by parameter name)."""
    api.reset()
    reply = client.predict({"text": "Hi", "files": []}, **settings, api_name="/chat")
    assert reply[0]["role"] == "assistant" and reply[0]["content"]
    return api.chat_requests()[0].body


def test_the_chat_api_takes_a_bare_message_and_settings_by_name(live_app: AppProcess, app_api: FakeAPI) -> None:
    client = Client(live_app.url, verbose=False)
    bare = chat_request(client, app_api)
    assert bare["model"] == "abab6.5s-chat" and bare["messages"][0]["content"] == "You are a helpful assistant."
    tuned = chat_request(client, app_api, model="MiniMax-Text-01", system_prompt="Answer in French.",
                         temperature=0.3, max_tokens=64)
    assert (tuned["model"], tuned["temperature"], tuned["max_tokens"]) == ("MiniMax-Text-01", 0.3, 64)
    assert tuned["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_login_is_required_when_a_username_and_password_are_set(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "app.log", APP_USERNAME="ada", APP_PASSWORD="lovelace-1815",
                     AIMLAPI_BASE_URL=shared_api.base_url).start()
    try:
        with requests.Session() as browser:
            assert browser.get(f"{app.url}config").status_code == 401
            wrong = browser.post(f"{app.url}login", data={"username": "ada", "password": "nope"})
            assert wrong.status_code == 400
            assert browser.post(f"{app.url}login", data={"username": "ada", "password": "lovelace-1815"}).ok
            assert "components" in browser.get(f"{app.url}config").json()
    finally:
        app.stop()


def test_a_malformed_setting_stops_start_up_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "AIMLAPI_READ_TIMEOUT": "soon", "HOME": str(ROOT)}
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "AIMLAPI_READ_TIMEOUT must be a number" in done.stderr and "Traceback" not in done.stderr
