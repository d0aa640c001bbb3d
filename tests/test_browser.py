"""The real page in Debian's Chromium, driven by Playwright, against the app and the stand-in API."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import SERVER_KEY, Pages

ARTIFACTS = ROOT / "test-artifacts"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, Route, expect  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402


@pytest.fixture
def page(pages: Pages, live_app: AppProcess, app_api: FakeAPI, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on the app; a screenshot of it is kept in test-artifacts/ for a person to look at."""
    page = pages.new(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.set_default_timeout(15_000)
    page.goto(live_app.url)
    page.locator("#chat-input textarea").wait_for()
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))


def send(page: Page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def bot_messages(page: Page):
    return page.locator('[data-testid="bot"]')


def open_settings(page: Page) -> None:
    page.get_by_role("button", name="Toggle Sidebar").click()
    expect(page.locator("#model")).to_be_visible()


def test_a_streamed_reply_appears_while_it_streams(page: Page, app_api: FakeAPI) -> None:
    words = [f"streamed{i}" for i in range(40)]
    app_api.script(Reply(text=" ".join(words), delay=0.05))
    send(page, "Hello")
    first = bot_messages(page).first
    expect(first).to_contain_text("streamed3")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    assert "streamed39" not in first.inner_text()  # seen mid-stream, not only at the end
    expect(first).to_contain_text("streamed39")
    expect(page.get_by_text(re.compile("tokens · .* to first token"))).to_be_visible()


def test_markdown_code_and_every_latex_delimiter_render(page: Page, app_api: FakeAPI) -> None:
    reply = "Inline $a^2$, \\(b^2\\) and display $$c^2$$ and \\[d^2\\].\n\n```python\nprint('hi')\n```\n\n**bold**"
    app_api.script(Reply(chunks=[reply]))
    send(page, "Show me maths")
    message = bot_messages(page).first
    expect(message.locator("strong")).to_have_text("bold")
    expect(message.locator(".katex")).to_have_count(4)
    expect(message.locator("pre code")).to_contain_text("print('hi')")
    expect(message.get_by_role("button", name=re.compile("copy", re.IGNORECASE)).first).to_be_attached()


def test_stop_halts_the_reply_and_the_textbox_works_again(page: Page, app_api: FakeAPI) -> None:
    app_api.script(Reply(text=" ".join(f"slow{i}" for i in range(400)), delay=0.05), Reply(text="Next reply."))
    send(page, "Tell me a long story")
    expect(bot_messages(page).first).to_contain_text("slow5")
    page.get_by_role("button", name="Stop").click()
    assert app_api.chat_requests()[0].client_disconnected.wait(5), "upstream request was not closed"
    shown = bot_messages(page).first.inner_text()
    assert "slow399" not in shown
    send(page, "Something else")
    expect(page.get_by_text("Next reply.")).to_be_visible()


def test_the_textbox_waits_for_a_slow_cancel_so_the_next_message_is_answered(page: Page, app_api: FakeAPI) -> None:
    """Until Stop's cancel request answers, Gradio's page counts the stopped reply as running and drops a new
    message's reply (its step runs once at a time): the textbox opened by the quick settling step after Stop let a
    message through that never got an answer (CI, under load). The cancel is held here, as a slow network would."""
    app_api.script(Reply(text=" ".join(f"slow{i}" for i in range(400)), delay=0.05), Reply(text="Next reply."))
    held: list[Route] = []
    page.route("**/gradio_api/cancel", lambda route: held.append(route))
    send(page, "Tell me a long story")
    expect(bot_messages(page).first).to_contain_text("slow5")
    with page.expect_response(lambda response: "/run/predict" in response.url):  # the settling step after Stop
        page.get_by_role("button", name="Stop").click()
    assert held, "the page sent no cancel"
    with pytest.raises(PlaywrightTimeoutError):  # the textbox stays shut while the cancel is pending
        page.wait_for_function("() => !document.querySelector('#chat-input textarea').disabled", timeout=3000)
    held[0].continue_()
    assert app_api.chat_requests()[0].client_disconnected.wait(5), "upstream request was not closed"
    send(page, "Something else")
    expect(page.get_by_text("Next reply.")).to_be_visible()


@pytest.mark.parametrize("first", ["cancel", "join"])
def test_stop_pressed_before_the_server_acknowledged_the_message_still_stops_the_reply(
    page: Page, app_api: FakeAPI, first: str
) -> None:
    """The page shows Stop as soon as a message is sent. On a slow network a visitor may press it before the answer
    to the message's `queue/join` (the event's id) arrives: Gradio's page then sends a cancel that names no event,
    which cancelled nothing: the reply streamed on into a page that said it stopped (web/stops.py). Found while
    checking Stop's neighbours for gradio_client's same race (tests/test_stop.py `cancel`). The join and the cancel
    are held here and let go in either order. The event is stopped before or after it calls the API: either way
    nothing of it reaches the page, and the next message is answered."""
    app_api.script(Reply(text=" ".join(f"slow{i}" for i in range(400)), delay=0.05))
    app_api.script_for("Something else", Reply(text="Next reply."))  # the stopped message has no reply to end it
    held: dict[str, Route] = {}
    sent: list[str] = []  # what the page asked Gradio, for the failure's message
    page.on("request", lambda r: sent.append(f"{r.url.rpartition('/')[2]} {r.post_data or ''}"[:120]))
    page.route("**/gradio_api/queue/join**", lambda route: held.setdefault("join", route))
    page.route("**/gradio_api/cancel", lambda route: held.setdefault("cancel", route))
    send(page, "Tell me a long story")
    while "join" not in held:
        page.wait_for_timeout(20)  # lets Playwright deliver the route
    page.get_by_role("button", name="Stop").click()
    while "cancel" not in held:
        page.wait_for_timeout(20)
    second = "join" if first == "cancel" else "cancel"
    with page.expect_response(f"**/gradio_api/{'queue/join' if first == 'join' else 'cancel'}**"):
        held[first].continue_()
    held[second].continue_()
    page.unroute_all()
    expect(page.locator("#chat-input textarea")).to_be_enabled()
    send(page, "Something else")
    expect(page.get_by_text("Next reply.")).to_be_visible()
    story = [r for r in app_api.chat_requests() if r.body["messages"][-1]["content"] == "Tell me a long story"]
    closed = [request.client_disconnected.wait(5) for request in story]
    assert all(closed), f"the reply went on after Stop: upstream closed {closed}; the page sent {sent}"
    expect(page.get_by_text("slow3", exact=False)).to_have_count(0)


def test_an_upstream_error_shows_inline_and_the_next_message_succeeds(page: Page, app_api: FakeAPI) -> None:
    app_api.script(*[Reply(status=503)] * 3, Reply(text="Back to normal."))
    send(page, "Hello?")
    expect(page.get_by_text("The API is having trouble")).to_be_visible()
    expect(page.get_by_text(re.compile("temporarily unavailable"))).to_be_visible()
    send(page, "Again")
    expect(page.get_by_text("Back to normal.")).to_be_visible()


def test_switching_model_changes_the_request(page: Page, app_api: FakeAPI) -> None:
    open_settings(page)
    page.locator("#model input").click()
    page.get_by_role("option", name="MiniMax-Text-01", exact=True).click()
    send(page, "Which model are you?")
    expect(bot_messages(page).first).to_contain_text("Hello from the stand-in.")
    assert app_api.chat_requests()[0].body["model"] == "MiniMax-Text-01"


def test_a_retired_default_model_is_answered_and_the_model_setting_follows(page: Page, app_api: FakeAPI) -> None:
    app_api.deprecated_models = frozenset({"abab6.5s-chat"})  # the app's catalogue still lists it
    send(page, "First message")
    expect(bot_messages(page).first).to_contain_text("Hello from the stand-in.")
    expect(page.get_by_text("abab6.5s-chat is retired by the API, so MiniMax-Text-01 answered.")).to_be_visible()
    expect(page.get_by_text("Model unavailable")).to_have_count(0)
    open_settings(page)
    expect(page.locator("#model input")).to_have_value("MiniMax-Text-01")
    send(page, "Second message")
    expect(page.get_by_text("Hello from the stand-in.")).to_have_count(2)
    assert [r.body["model"] for r in app_api.chat_requests()] == ["abab6.5s-chat", "MiniMax-Text-01", "MiniMax-Text-01"]


def test_a_text_attachment_reaches_the_request(page: Page, app_api: FakeAPI, tmp_path: Path) -> None:
    notes = tmp_path / "meeting-notes.txt"
    notes.write_text("Budget approved: 42,000 for the pilot.\n", encoding="utf-8")
    page.locator('#chat-input input[data-testid="file-upload"]').set_input_files(str(notes))
    expect(page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")).to_be_visible()
    send(page, "What budget was approved?")
    expect(bot_messages(page).first).to_contain_text("Hello from the stand-in.")
    user_message = app_api.chat_requests()[0].body["messages"][-1]["content"]
    assert '<file name="meeting-notes.txt">\nBudget approved: 42,000 for the pilot.\n</file>' in user_message
    assert user_message.endswith("What budget was approved?")


def test_the_long_document_example_sends_the_report(page: Page, app_api: FakeAPI) -> None:
    page.get_by_text("Read this report.").click()
    expect(bot_messages(page).first).to_contain_text("Hello from the stand-in.")
    user_message = app_api.chat_requests()[0].body["messages"][-1]["content"]
    assert '<file name="harbour-microgrid-report.md">' in user_message and "ice machines" in user_message


def test_the_markdown_export_downloads(page: Page, app_api: FakeAPI) -> None:
    app_api.script(Reply(text="The answer is **42**."))
    send(page, "Meaning of life?")
    expect(bot_messages(page).first).to_contain_text("The answer is 42.")
    open_settings(page)
    page.get_by_role("button", name="Export conversation").click()
    with page.expect_download() as download:
        page.locator("#export-md").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename == "conversation.md"
    assert "## You\n\nMeaning of life?" in text and "## Assistant\n\nThe answer is **42**." in text


def test_an_export_after_an_upstream_echo_holds_no_key(page: Page, app_api: FakeAPI) -> None:
    app_api.script(Reply(status=400, body=f'{{"message": "bad Authorization: Bearer {SERVER_KEY}"}}'))
    send(page, "Provoke an echo")
    expect(page.get_by_text("Request rejected")).to_be_visible()
    open_settings(page)
    page.get_by_role("button", name="Export conversation").click()
    for button in ("#export-md", "#export-json"):
        with page.expect_download() as download:
            page.locator(button).click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        assert "Provoke an echo" in text and "[redacted]" in text and SERVER_KEY not in text


def test_a_visitors_own_key_is_used_but_never_stored(page: Page, app_api: FakeAPI, live_app: AppProcess) -> None:
    visitor_key = "visitor-canary-5f0e1d"
    open_settings(page)
    page.get_by_label("Your own AI/ML API key (optional)").fill(visitor_key)
    send(page, "Remember this conversation")
    expect(bot_messages(page).first).to_contain_text("Hello from the stand-in.")
    assert app_api.chat_requests()[0].headers["Authorization"] == f"Bearer {visitor_key}"
    storage = "JSON.stringify(Object.assign({}, localStorage)) + JSON.stringify(Object.assign({}, sessionStorage))"
    page.wait_for_function(f"{storage}.includes('saved-conversations')")  # the conversation is saved (encrypted)…
    assert visitor_key not in page.evaluate(storage)  # …and the key is not stored beside it
    assert page.evaluate("indexedDB.databases().then(dbs => dbs.map(db => db.name))") == []  # no run history
    assert visitor_key not in live_app.logs()
    for folder in (Path(live_app.env["GRADIO_TEMP_DIR"]), ROOT / ".gradio"):
        for path in folder.rglob("*") if folder.exists() else []:
            assert not path.is_file() or visitor_key.encode() not in path.read_bytes(), path


HOSTILE = (
    '<script>window.__pwned = "script"</script>\n\n'
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n'
    "[a markdown link](javascript:window.__pwned='markdown')\n\n"
    "<a href=\"javascript:window.__pwned='anchor'\">an html link</a>\n\n"
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>\n\n" + "A" * 20_000
)


def test_hostile_html_in_a_reply_is_inert_and_the_page_stays_usable(page: Page, app_api: FakeAPI) -> None:
    app_api.script(Reply(chunks=[HOSTILE]))
    send(page, "Say something nasty")
    reply = bot_messages(page).first
    expect(reply).to_contain_text("AAAAAAAA")
    for name in ("a markdown link", "an html link"):
        links = reply.get_by_text(name)
        if links.count():
            links.first.click()
    assert page.evaluate("window.__pwned") is None
    assert reply.locator("script, iframe, img[onerror]").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1
    send(page, "Still there?")
    expect(page.get_by_text("Hello from the stand-in.")).to_be_visible()


def test_a_saved_conversation_opens_again_from_the_history(page: Page, app_api: FakeAPI) -> None:
    """Opening a saved conversation re-renders the chat; with the app's folder blocked it once failed silently."""
    app_api.script(Reply(text="Paris is the capital."))
    send(page, "Capital of France?")
    expect(bot_messages(page).first).to_contain_text("Paris is the capital.")
    page.get_by_role("button", name=re.compile("New chat", re.IGNORECASE)).click()
    expect(bot_messages(page)).to_have_count(0)
    page.get_by_text("Capital of France?").first.click()
    expect(bot_messages(page).first).to_contain_text("Paris is the capital.")
