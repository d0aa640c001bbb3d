"""The chat's page wiring (chat_ui.py) in Debian's Chromium: what each action costs in Gradio calls (issue 23: at
most 4 a message; Gradio's own ChatInterface made 9), and that every feature it replaced still works."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from chat_backend import load_settings
from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import Pages

ARTIFACTS = ROOT / "test-artifacts"
CALL = re.compile(r"/gradio_api/(run/predict|queue/join|cancel|reset)")  # one per Gradio call (streams aside)
OLD, NEW = "abab6.5s-chat", "MiniMax-Text-01"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402


class Calls:
    """The Gradio calls a page makes, taken action by action: `take()` returns those since the last take."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("request", lambda request: self._note(request.url))

    def _note(self, url: str) -> None:
        if match := CALL.search(url):
            self.seen.append(match.group(1))

    def take(self) -> list[str]:
        taken, self.seen = self.seen, []
        return taken

    def wait_for(self, count: int, page: Page, seconds: float = 20.0) -> None:
        """Until `count` calls have gone out since the last take (at most `seconds`)."""
        deadline = time.monotonic() + seconds
        while len(self.seen) < count and time.monotonic() < deadline:
            page.wait_for_timeout(50)  # lets Playwright deliver the page's request events


@pytest.fixture
def page(pages: Pages, live_app: AppProcess, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = pages.new(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))


def opened(page: Page, app: AppProcess) -> Calls:
    """Open the app in `page`, counting its Gradio calls from the start; returns once the page load's own calls
    (one per load event with a server function, as /config lists them) have gone out."""
    calls = Calls(page)
    config = requests.get(f"{app.url}config", timeout=10).json()
    on_load = sum(1 for d in config["dependencies"] if d["backend_fn"] and ["load"] in [t[1:] for t in d["targets"]])
    page.goto(app.url)
    box(page).wait_for()
    calls.wait_for(on_load, page)
    calls.take()
    return calls


def box(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("#chat-input textarea")


def send(page: Page, text: str) -> None:
    """Type and send `text` once the page is ready for it (the last reply's own steps done)."""
    expect(box(page)).to_be_enabled()
    box(page).fill(text)
    box(page).press("Enter")


def settled(page: Page) -> None:
    """The page after a reply: its own steps have run (the textbox is enabled again)."""
    expect(box(page)).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)


def asked(api: FakeAPI) -> list[str]:
    """The texts of the last chat request's messages, system prompt first."""
    return [m["content"] for m in api.chat_requests()[-1].body["messages"]]


def test_a_message_is_one_gradio_call_and_the_chat_goes_up_with_it(
    page: Page, live_app: AppProcess, app_api: FakeAPI
) -> None:
    calls = opened(page, live_app)
    app_api.script(Reply(text="Paris."), Reply(text="About 2.1 million."))
    for question, answer in (("Capital of France?", "Paris."), ("Population?", "About 2.1 million.")):
        send(page, question)
        expect(page.get_by_text(answer)).to_be_visible()
        settled(page)
        assert calls.take() == ["queue/join"], "one message, one queued call (Gradio's ChatInterface made 9)"
    assert asked(app_api)[1:] == ["Capital of France?", "Paris.", "Population?"]


def test_stop_retry_undo_and_edit(page: Page, live_app: AppProcess, app_api: FakeAPI) -> None:
    calls = opened(page, live_app)
    app_api.script(Reply(text="First answer."), Reply(text=" ".join(f"slow{i}" for i in range(400)), delay=0.05))
    send(page, "Question one")
    expect(page.get_by_text("First answer.")).to_be_visible()
    send(page, "Tell me a long story")
    expect(page.get_by_text(re.compile("slow5"))).to_be_visible()
    calls.take()
    page.get_by_role("button", name="Stop").dispatch_event("click")  # a click waits for streaming to stop moving it
    assert app_api.chat_requests()[-1].client_disconnected.wait(5), "the upstream request was not closed"
    settled(page)
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # Gradio's page could mark the chat failed
    # Gradio's cancel and reset, the step that settles a growing thought, and the one that clears that mark (twice
    # if it was set); the page's Stop sends the cancel first
    stop = calls.take()
    assert stop[0] == "cancel" and sorted(stop[1:]).count("reset") == 1, stop
    assert {call for call in stop[1:] if call != "reset"} == {"run/predict"} and len(stop) <= 5, stop

    app_api.script(Reply(text="Retried answer."))
    page.get_by_role("button", name="Retry").last.click()
    expect(page.get_by_text("Retried answer.")).to_be_visible()
    settled(page)
    assert calls.take() == ["queue/join"]
    assert asked(app_api)[1:] == ["Question one", "First answer.", "Tell me a long story"]

    page.get_by_role("button", name="Undo").last.click()
    expect(page.get_by_text("Retried answer.")).to_have_count(0)
    expect(box(page)).to_have_value("Tell me a long story")  # back in the textbox, to change and send again
    assert calls.take() == []

    box(page).fill("")
    app_api.script(Reply(text="Edited answer."))
    page.locator('[data-testid="user"]').first.hover()
    page.get_by_role("button", name="Edit").first.click()
    page.locator("textarea.edit-textarea").fill("Question one, edited")
    page.get_by_role("button", name="Submit").first.click()
    expect(page.get_by_text("Edited answer.")).to_be_visible()
    settled(page)
    assert calls.take() == ["run/predict", "queue/join"]  # the edit's data reaches only the server
    assert asked(app_api)[1:] == ["Question one, edited"]
    expect(page.get_by_text("First answer.")).to_have_count(0)


def test_an_upload_an_example_and_saved_conversations_after_a_reload(
    page: Page, live_app: AppProcess, app_api: FakeAPI, tmp_path: Path
) -> None:
    calls = opened(page, live_app)
    notes = tmp_path / "notes.txt"
    notes.write_text("Budget approved: 42,000.\n", encoding="utf-8")
    page.locator('#chat-input input[data-testid="file-upload"]').set_input_files(str(notes))
    expect(page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")).to_be_visible()
    calls.take()  # the upload's own request is not a Gradio call
    app_api.script(Reply(text="The budget is 42,000."))
    send(page, "What budget?")
    expect(page.get_by_text("The budget is 42,000.")).to_be_visible()
    settled(page)
    assert calls.take() == ["queue/join"]
    message = asked(app_api)[-1]
    assert '<file name="notes.txt">\nBudget approved: 42,000.\n</file>' in message and message.endswith("What budget?")

    page.get_by_role("button", name=re.compile("New chat", re.IGNORECASE)).click()
    expect(page.locator('[data-testid="bot"]')).to_have_count(0)
    page.get_by_text("Read this report.").click()
    expect(page.locator('[data-testid="bot"]').first).to_contain_text("Hello from the stand-in.")
    settled(page)
    assert calls.take() == ["run/predict", "queue/join"]  # the example's index reaches only the server
    assert '<file name="harbour-microgrid-report.md">' in asked(app_api)[-1]

    page.reload()
    box(page).wait_for()
    saved = page.locator("#saved-conversations td")  # newest first
    expect(saved).to_have_text([re.compile(r"^📎 Read this report"), "📎 What budget?"])
    calls.take()
    saved.nth(1).click()
    expect(page.get_by_text("The budget is 42,000.")).to_be_visible()
    assert calls.take() == ["run/predict"]  # opening one: its files checked on the server
    app_api.script(Reply(text="Still 42,000."))
    send(page, "Sure?")  # continues that conversation, saved in its place
    expect(page.get_by_text("Still 42,000.")).to_be_visible()
    settled(page)
    assert asked(app_api)[-2:] == ["The budget is 42,000.", "Sure?"]
    page.reload()
    box(page).wait_for()
    expect(saved).to_have_count(2)


def test_the_model_setting_follows_each_fallback_with_two_more_calls(
    page: Page, live_app: AppProcess, app_api: FakeAPI
) -> None:
    calls = opened(page, live_app)
    app_api.deprecated_models = frozenset({OLD})  # the app's catalogue still lists it
    model = page.locator("#model input")
    for attempt in range(2):  # the second time the setting already held NEW once: it must move again
        send(page, f"Message {attempt}")
        expect(page.get_by_text(f"{OLD} is retired by the API, so {NEW} answered.")).to_have_count(attempt + 1)
        expect(model).to_have_value(NEW)
        settled(page)
        page.get_by_role("button", name="Toggle Sidebar").click()
        # the reply, the switch, then the temperature slider fitted to the new model
        calls.wait_for(3, page)
        assert calls.take() == ["queue/join", "run/predict", "run/predict"]
        model.click()
        page.get_by_role("option", name=re.compile(f"^{OLD}")).click()  # back to the retired one, by hand
        expect(model).to_have_value(OLD)
        page.get_by_role("button", name="Toggle Sidebar").click()
        calls.take()  # the slider fitted to the model chosen by hand
    assert [r.body["model"] for r in app_api.chat_requests()] == [OLD, NEW, OLD, NEW]


def test_saved_conversations_stay_readable_after_a_restart(tmp_path: Path) -> None:
    """The browser keeps them encrypted under a storage key and secret from the page config: both must be the same
    in every build (Gradio draws a new secret each start, which left a returning visitor's list unreadable after a
    restart, a Space waking from sleep, or on another replica)."""
    import app

    environ = {"DATA_DIR": str(tmp_path), "AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1"}
    stored = [
        {
            (c["props"]["storage_key"], c["props"]["secret"])
            for c in demo.config["components"]
            if c["type"] == "browserstate"
        }
        for demo, _ in (app.build(load_settings(environ, None)) for _ in range(2))
    ]
    assert stored[0] == stored[1] and ("minimax-chat-saved-conversations", "saved-conversations") in stored[0]


@pytest.mark.parametrize("share", ["1", "0"])
def test_a_page_load_is_one_gradio_call_with_sharing_on_or_off(tmp_path: Path, share: str) -> None:
    """The model list in the visitor's language and this browser's shared links come in one call (one request
    through the guard per visitor, not two); its outputs are the model setting, and the links when sharing is on."""
    import app

    environ = {"DATA_DIR": str(tmp_path), "AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1", "SHARE": share}
    demo, _ = app.build(load_settings(environ, None))
    kinds = {c["id"]: c["type"] for c in demo.config["components"]}
    on_load = [d for d in demo.config["dependencies"] if d["backend_fn"] and any(t[1] == "load" for t in d["targets"])]
    assert len(on_load) == 1
    outputs = sorted(kinds[i] for i in on_load[0]["outputs"])
    assert outputs == (["button", "dropdown", "dropdown"] if share == "1" else ["dropdown"])
