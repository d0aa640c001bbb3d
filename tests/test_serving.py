"""How the app serves: as a Space does it, offline, through the API from code, and the README's own commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from gradio_client import Client

from tests.app_process import ROOT, AppInProcess, AppProcess, free_port
from tests.fake_api import FakeAPI
from tests.helpers import app_on, gradio_client, run_event

SPACE_HOST = "someone-minimax-chat.hf.space"
PROXY_HEADERS = {
    "x-forwarded-for": "203.0.113.7, 10.0.0.1",
    "x-forwarded-proto": "https",
    "x-forwarded-host": SPACE_HOST,
}


def test_as_on_a_space_it_binds_every_interface_and_links_files_through_the_proxy(
    shared_api: FakeAPI, tmp_path: Path
) -> None:
    """What a Space sets: SPACE_ID, SPACE_HOST and SYSTEM=spaces (Gradio then serves with its Spaces reloader),
    the port (GRADIO_SERVER_PORT, as AppProcess does), and an https proxy in front adding X-Forwarded-*:
    file links must come back as https on the Space's host."""
    app = AppProcess(
        tmp_path / "app.log",
        SPACE_ID="someone/minimax-chat",
        SPACE_HOST=SPACE_HOST,
        SYSTEM="spaces",
        AIMLAPI_BASE_URL=shared_api.base_url,
        GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
    )
    app.start(timeout=180)
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
    gone = str(Path(live_app.env["GRADIO_TEMP_DIR"]) / ("0" * 64) / "tide.pdf")
    conversation = [
        {"role": "user", "content": [{"type": "file", "file": {"path": gone}}]},
        {"role": "user", "content": [{"type": "text", "text": "Summarise it"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is about tides."}]},
    ]
    reply = run_event(live_app.url, "_load_conversation", [0, [conversation]], session="woke-up")
    assert reply.ok, reply.text[:300]
    assert "It is about tides." in reply.text and "[attachment tide.pdf is no longer available]" in reply.text


def test_a_saved_conversations_missing_file_is_named_in_the_visitors_language(live_app: AppProcess) -> None:
    """Reproduced in Chromium with locale zh-CN: a saved chat whose upload is gone shows
    "[attachment notes.txt is no longer available]" in English on an otherwise Chinese page."""
    uploaded = requests.post(
        f"{live_app.url}gradio_api/upload", files={"files": ("notes.txt", b"tide tables")}, timeout=30
    ).json()[0]
    Path(uploaded).unlink()  # the cache was emptied since (CACHE_CLEAR_MINUTES, a restart)
    conversation = [
        {"role": "user", "content": [{"type": "file", "file": {"path": uploaded, "orig_name": "notes.txt"}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
    ]
    reply = run_event(
        live_app.url, "_load_conversation", [0, [conversation]], "zh-visitor", headers={"Accept-Language": "zh-CN"}
    )
    assert reply.ok, reply.text[:300]
    assert "notes.txt" in reply.text and "no longer available" not in reply.text, reply.text[:300]


def test_the_front_matter_declares_the_python_that_runs_the_tests() -> None:
    """Spaces run the front matter's python_version (3.10 when unset, where `datetime.UTC` does not exist)."""
    front = (ROOT / "README.md").read_text(encoding="utf-8").split("---")[1]
    declared = re.search(r"^python_version:\s*\"?([0-9.]+)\"?\s*$", front, re.MULTILINE)
    assert declared and declared.group(1) == f"{sys.version_info.major}.{sys.version_info.minor}"


def check_offline(url: str) -> None:
    """A bare API call gets the canned reply."""
    reply, _model = gradio_client(url).predict({"text": "Hello there", "files": []}, api_name="/chat")
    assert "canned reply" in reply[0]["content"] and "Hello there" in reply[0]["content"]
    assert "runs offline" in reply[0]["content"] and "[redacted]" not in reply[0]["content"]  # "offline" is no key


def test_offline_mode_answers_a_bare_api_call_with_a_canned_reply(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OFFLINE=1 with no key and no base URL, served from this process. README's `python app.py --offline` is
    checked the same way, in a process of its own, by the README's test."""
    import app

    for name in [name for name in os.environ if name.startswith("AIMLAPI_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OFFLINE", "1")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))  # never the repository's ./data
    settings = app.settings_from_environment()
    served = AppInProcess(tmp_path / "app.log", settings=settings).start()
    try:
        check_offline(served.url)
    finally:
        served.stop()


def chat_request(client: Client, api: FakeAPI, **settings: Any) -> dict[str, Any]:
    """The body the API received for one message sent with `settings` (by parameter name)."""
    api.reset()
    reply, _model = client.predict({"text": "Hi", "files": []}, **settings, api_name="/chat")
    assert reply[0]["role"] == "assistant" and reply[0]["content"]
    return api.chat_requests()[0].body


def test_the_chat_api_takes_a_bare_message_and_settings_by_name(live_app: AppProcess, app_api: FakeAPI) -> None:
    client = gradio_client(live_app.url)
    bare = chat_request(client, app_api)
    assert bare["model"] == "abab6.5s-chat" and bare["messages"][0]["content"] == "You are a helpful assistant."
    tuned = chat_request(
        client, app_api, model="MiniMax-Text-01", system_prompt="Answer in French.", temperature=0.3, max_tokens=64
    )
    assert (tuned["model"], tuned["temperature"], tuned["max_tokens"]) == ("MiniMax-Text-01", 0.3, 64)
    assert tuned["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_the_readmes_python_example_runs_as_written(
    live_app: AppProcess, app_api: FakeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    [example] = re.findall(r"```python\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    exec(compile(example.replace("http://127.0.0.1:7860/", live_app.url), "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines()[-1] == "Hello from the stand-in."
    bare, tuned = (request.body for request in app_api.chat_requests())
    assert bare["model"] == "abab6.5s-chat" and bare["messages"][-1]["content"] == "Hello!"
    assert (tuned["model"], tuned["temperature"], tuned["max_tokens"]) == ("MiniMax-Text-01", 0.3, 256)
    assert tuned["messages"][0] == {"role": "system", "content": "Answer in French."}


JS_CLIENT = ROOT / "tests" / "js" / "node_modules" / "@gradio" / "client"


@pytest.mark.skipif(
    not JS_CLIENT.exists() and not os.environ.get("CI"), reason="npm ci --prefix tests/js installs @gradio/client"
)
def test_the_readmes_javascript_example_runs_as_written(live_app: AppProcess, app_api: FakeAPI) -> None:
    [example] = re.findall(r"```js\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    script = ROOT / "tests" / "js" / "example.mjs"  # beside node_modules, so that the import resolves
    script.write_text(example.replace("http://127.0.0.1:7860/", live_app.url), encoding="utf-8")
    try:
        done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60, check=False)
    finally:
        script.unlink()
    assert done.returncode == 0 and done.stdout.strip() == "Hello from the stand-in.", done.stderr[-2000:]
    [request] = app_api.chat_requests()
    assert (request.body["model"], request.body["temperature"]) == ("MiniMax-Text-01", 0.3)
    assert request.body["messages"][-1]["content"] == "Hello!"


def test_login_is_required_when_a_username_and_password_are_set(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = app_on(shared_api, tmp_path, APP_USERNAME="ada", APP_PASSWORD="lovelace-1815").start()
    try:
        with requests.Session() as browser:
            assert browser.get(f"{app.url}config").status_code == 401
            wrong = browser.post(f"{app.url}login", data={"username": "ada", "password": "nope"})
            assert wrong.status_code == 400
            assert browser.post(f"{app.url}login", data={"username": "ada", "password": "lovelace-1815"}).ok
            assert "components" in browser.get(f"{app.url}config").json()
    finally:
        app.stop()


def test_a_malformed_setting_stops_start_up_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """`python app.py` runs `main`; a SystemExit carrying text is printed alone (no traceback), with status 1."""
    import app

    monkeypatch.setenv("AIMLAPI_READ_TIMEOUT", "soon")
    monkeypatch.setattr(app, "ChatApp", lambda settings: pytest.fail("start-up went on past the settings"))
    with pytest.raises(SystemExit) as stopped:
        app.main([])
    assert isinstance(stopped.value.code, str) and "AIMLAPI_READ_TIMEOUT must be a number" in stopped.value.code


@contextmanager
def serving(command: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float = 180) -> Iterator[str]:
    """Run a long-running README command until the block ends; yields the page's URL once it serves."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.3)  # polling the port: nothing else to wait on
        yield url
    finally:
        process.terminate()
        process.wait(20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except (requests.ConnectionError, requests.Timeout):
        return False


def project_files() -> list[str]:
    """The project as a commit of its working tree would hold it (what a clone gets): tracked files and new ones
    git does not ignore, so never `.env`, data, caches, or what tests running beside this one write."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]  # not those deleted since


@pytest.mark.timeout(600)
def test_the_readmes_commands_work_in_order_in_a_fresh_environment(tmp_path: Path) -> None:
    """Every bash block of the README, in order, from a fresh copy of the project in a new virtual environment.
    The venv sees the system's packages (--system-site-packages): a plain one installs Gradio from scratch,
    which took over 8 minutes on the 2-core test machine; pip still checks every requirement is met."""
    project = tmp_path / "project"
    for name in project_files():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_PORT": str(free_port()),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    blocks = re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    ran = []
    for block in blocks:
        for step in (part.strip() for line in block.splitlines() for part in line.split("&&")):
            if step == "python -m pytest":
                continue  # the test suite itself: this very run
            if step.startswith("python app.py"):
                log = tmp_path / f"step{len(ran)}.log"
                with serving(step.split(), project, env, log) as url:
                    if "--offline" in step:
                        check_offline(url)
                        assert "offline" in log.read_text(encoding="utf-8")  # the log says so
            else:
                done = subprocess.run(
                    step, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
                )
                assert done.returncode == 0, f"{step}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            ran.append(step)
    assert "python app.py" in ran and "python app.py --offline" in ran
