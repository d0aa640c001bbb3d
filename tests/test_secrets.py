"""The server's key never leaves the server: not in pages, config, API info, API answers, notices or logs.

`live_app` runs with a recognisable canary key; these tests look for it everywhere a visitor or a log
reader could. (Exports and the visitor's own key are checked in a real browser, in test_browser.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import requests

from chat_backend.errors import REDACTED, StreamRedactor, redact
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import SERVER_KEY, app_on, chat, gradio_client, notices

ECHO = f'{{"message": "Invalid header Authorization: Bearer {SERVER_KEY}", "key": "{SERVER_KEY}"}}'


def test_the_key_is_not_in_the_page_its_scripts_or_the_config(live_app: AppProcess) -> None:
    page = requests.get(live_app.url, timeout=10).text
    scripts = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    bodies = [page] + [requests.get(requests.compat.urljoin(live_app.url, s), timeout=10).text for s in scripts[:20]]
    for path in ("config", "gradio_api/info", "gradio_api/info?all_endpoints=true", "gradio_api/openapi.json"):
        response = requests.get(live_app.url + path, timeout=10)
        bodies.append(response.text)
    assert len(bodies) > 4
    assert not [body[:80] for body in bodies if SERVER_KEY in body]


def test_the_key_is_not_in_api_answers_even_when_upstream_echoes_it(live_app: AppProcess, app_api: FakeAPI) -> None:
    app_api.script(
        Reply(status=400, body=ECHO), Reply(status=502, body=f"<pre>{SERVER_KEY}</pre>", content_type="text/html")
    )
    client = gradio_client(live_app.url)
    outputs = [chat(client, "first")[1], chat(client, "second")[1], chat(client, "third")]
    assert SERVER_KEY not in str(outputs)
    assert "[redacted]" in notices(outputs[0])[0]["content"]
    assert app_api.chat_requests()[0].headers["Authorization"] == f"Bearer {SERVER_KEY}"  # it was really used


def test_the_key_is_not_in_the_logs(live_app: AppProcess, app_api: FakeAPI) -> None:
    app_api.script(Reply(status=401, body=ECHO), Reply(text="fine"))
    client = gradio_client(live_app.url)
    chat(client, "fail")
    chat(client, "work")
    logs = live_app.logs()
    assert "chat_backend.client" in logs or "chat " in logs  # the log is being written
    assert SERVER_KEY not in logs


def test_the_key_is_not_in_the_log_of_an_app_served_in_the_test_process(shared_api: FakeAPI, tmp_path: Path) -> None:
    """Most tests serve their app from the test process (tests/app_process.py): its log must hold what the app
    logged, the failure that echoed the key included, or the check above would pass on an empty log."""
    shared_api.reset()
    app = app_on(shared_api, tmp_path).start()
    try:
        shared_api.script(Reply(status=401, body=ECHO))
        chat(gradio_client(app.url), "fail")
        logs = app.logs()
    finally:
        app.stop()
    assert "chat_backend.client" in logs or "chat " in logs, logs[-2000:]
    assert SERVER_KEY not in logs


def test_gradio_run_history_is_off_so_inputs_are_not_kept_in_the_browser(live_app: AppProcess) -> None:
    assert requests.get(live_app.url + "config", timeout=10).json()["run_history"] is False


def test_the_key_is_not_in_a_reply_that_echoes_it(live_app: AppProcess, app_api: FakeAPI) -> None:
    """A gateway or model that repeats the key in an ordinary (200) reply, whole or split across chunks: the
    browser must not receive it, as it does not from an error body."""
    app_api.script(
        Reply(text=f"Your key is {SERVER_KEY}."),
        Reply(text=f"key {SERVER_KEY}", chunks=["key ", SERVER_KEY[:6], SERVER_KEY[6:]]),
    )
    client = gradio_client(live_app.url)
    outputs = [chat(client, "first"), chat(client, "second")]
    assert app_api.chat_requests()[1].headers["Authorization"] == f"Bearer {SERVER_KEY}"  # it was really used
    assert SERVER_KEY not in str(outputs)


def test_the_key_is_not_in_a_request_id_that_echoes_it(live_app: AppProcess, app_api: FakeAPI) -> None:
    """The request id shown in a notice comes from the upstream (an error body's `requestId`, or the
    `x-inference-id` header of a reply): an echo of the key there reaches the browser as it stands."""
    app_api.script(
        Reply(status=400, body={"requestId": SERVER_KEY, "message": "bad request"}),
        Reply(text="fine", headers={"x-inference-id": SERVER_KEY}),
    )
    client = gradio_client(live_app.url)
    outputs = [chat(client, "first"), chat(client, "second")]
    assert SERVER_KEY not in str(outputs)


def test_only_strings_that_can_be_keys_are_redacted() -> None:
    """The offline stand-in's key is the word "offline", and a visitor may paste "abc": neither is a key, and
    replacing them would garble every reply that uses the word (issue 24, defect 1)."""
    reply = "the app runs offline: start it without --offline; abc is not a key"
    assert redact(reply, "offline", "abc") == reply
    short = StreamRedactor("offline")
    assert short.add("runs off") + short.add("line now") + short.release() == "runs offline now"
    long_key = "sk-" + "7" * 29
    assert redact(f"key {long_key}.", long_key) == f"key {REDACTED}."
    streamed = StreamRedactor(long_key)
    assert streamed.add("key " + long_key[:10]) + streamed.add(long_key[10:] + ".") + streamed.release() == (
        f"key {REDACTED}."
    )
