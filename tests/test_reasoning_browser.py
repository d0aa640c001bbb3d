"""The model's thinking on the real page in Debian's Chromium: live and open while it grows, folded above the
answer once it starts, cut by Stop, and out of the way of retry, undo and edit; screenshots kept in
test-artifacts/ (folded and opened, light and dark, English and Chinese, desktop and phone)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from chat_backend.config import load_settings
from chat_backend.shared_links import Shares
from chat_backend.store import SQLITE_FILE, SQLiteStore
from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.fake_api import THINKING_SHAPES, FakeAPI, Reply
from tests.helpers import Pages, serious_violations
from web import share_page

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"
THOUGHT = (
    "The user asks for the capital of France. **Paris** is the capital and its largest city; the city proper has "
    "about 2.1 million people. I should answer briefly and mention the population."
)
ANSWER = "The capital of France is **Paris**, home to about 2.1 million people."
FACTS = re.compile("to first thought|开始思考用时")
TAGS = ("<think>", "</think>", "<mm:think>", "</mm:think>")
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


def open_page(pages: Pages, app: AppProcess, lang: str = "en", scheme: str = "light", viewport: dict = DESKTOP) -> Page:
    page = pages.new(viewport=viewport, color_scheme=scheme, locale="zh-CN" if lang == "zh" else "en-US")
    page.set_default_timeout(15_000)
    page.goto(app.url)
    page.locator("#chat-input textarea").wait_for()
    return page


@pytest.fixture
def page(pages: Pages, live_app: AppProcess, app_api: FakeAPI) -> Page:
    return open_page(pages, live_app)


def pick_model(page: Page, model: str) -> None:
    page.get_by_role("button", name=re.compile("Toggle Sidebar|切换侧边栏")).click()
    page.locator("#model input").click()
    page.get_by_role("option", name=model, exact=True).click()
    expect(page.locator("#model input")).to_have_value(model)
    page.get_by_role("button", name=re.compile("Toggle Sidebar|切换侧边栏")).click()


def send(page: Page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def bot(page: Page):
    return page.locator('[data-testid="bot"]')


def thoughts(page: Page):
    """The folds that hold the model's thinking (notices and facts fold the same way, under other titles)."""
    return page.locator(".thought-group").filter(has=page.locator("[role=button]", has_text="💭"))


def thought_title(page: Page):
    return thoughts(page).locator("[role=button]").first


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"reasoning-{name}.png"))


@pytest.mark.parametrize(
    ("lang", "scheme", "viewport"),
    [("en", "light", DESKTOP), ("en", "dark", DESKTOP), ("zh", "light", DESKTOP), ("zh", "dark", PHONE)],
)
def test_the_thought_is_folded_above_the_answer_and_opens(
    pages: Pages, live_app: AppProcess, app_api: FakeAPI, lang: str, scheme: str, viewport: dict
) -> None:
    page = open_page(pages, live_app, lang, scheme, viewport)
    pick_model(page, "minimax/m2")
    app_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="think", delay=0.05))
    send(page, "法国的首都是哪里？" if lang == "zh" else "Capital of France?")
    expect(page.get_by_text(FACTS)).to_be_visible(timeout=30_000)
    title = thought_title(page)
    expect(title).to_have_text(re.compile(r"💭 (Thought for [\d.]+ s|已思考 [\d.]+ 秒)\s*$"))
    expect(page.get_by_text("the city proper has")).to_be_hidden()  # folded
    expect(bot(page).get_by_text("The capital of France is")).to_be_visible()
    size = "phone" if viewport is PHONE else "desktop"
    shot(page, f"folded-{lang}-{scheme}-{size}")
    title.click()
    expect(page.get_by_text("the city proper has")).to_be_visible()
    page.wait_for_function("() => document.getAnimations().length === 0")  # the fold has finished opening
    thought_box = thoughts(page).first.bounding_box()
    answer_box = bot(page).get_by_text("The capital of France is").bounding_box()
    assert thought_box and answer_box and thought_box["y"] + thought_box["height"] <= answer_box["y"]  # above
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
    shot(page, f"opened-{lang}-{scheme}-{size}")
    assert serious_violations(page) == []  # the open thought's text keeps its contrast, light and dark


def test_stop_while_thinking_keeps_the_thought_and_says_it_was_cut(page: Page, app_api: FakeAPI) -> None:
    pick_model(page, "minimax/m2")
    app_api.script(
        Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="reasoning_content", delay=0.05, stall_after=8),
        Reply(text="Next reply."),
    )
    send(page, "Capital of France?")
    expect(thought_title(page)).to_have_text("💭 Thinking…")
    expect(bot(page).first).to_contain_text("The user asks for the capital")
    page.get_by_role("button", name="Stop").click()
    assert app_api.chat_requests()[0].client_disconnected.wait(5), "upstream request was not closed"
    expect(thought_title(page)).to_have_text("💭 Thinking (cut off)")
    expect(page.locator(".thought-group .loading-spinner")).to_have_count(0)
    shot(page, "stopped-en-light-desktop")
    send(page, "Something else")
    expect(page.get_by_text("Next reply.")).to_be_visible()
    expect(thought_title(page)).to_have_text("💭 Thinking (cut off)")  # still, after the next reply
    sent = app_api.chat_requests()[1].body["messages"]
    assert "The user asks" not in json.dumps(sent)


def test_retry_undo_and_edit_work_on_the_answer(page: Page, app_api: FakeAPI) -> None:
    pick_model(page, "minimax/minimax-m3")
    for answer in ("First answer.", "Retried answer.", "Edited answer."):
        app_api.script(Reply(text=answer, thinking=f"Thinking before “{answer}”", thinking_shape="mm:think"))
    send(page, "Capital of France?")
    expect(page.get_by_text("First answer.", exact=True)).to_be_visible()
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_text("Retried answer.", exact=True)).to_be_visible()
    expect(page.get_by_text("First answer.", exact=True)).to_have_count(0)
    expect(thoughts(page)).to_have_count(1)  # the old thought went with its answer
    retried = app_api.chat_requests()[1].body["messages"]
    assert retried[1:] == [{"role": "user", "content": "Capital of France?"}]
    page.get_by_role("button", name="Edit").first.click()
    page.locator("textarea.edit-textarea").fill("Capital of Italy?")
    page.locator("[role=log]").get_by_role("button", name="Submit").click()
    expect(page.get_by_text("Edited answer.", exact=True)).to_be_visible()
    assert app_api.chat_requests()[2].body["messages"][1:] == [{"role": "user", "content": "Capital of Italy?"}]
    page.get_by_role("button", name="Undo").click()
    expect(bot(page)).to_have_count(0)
    expect(thoughts(page)).to_have_count(0)


@pytest.mark.parametrize("shape", [*THINKING_SHAPES, "none"])
def test_within_a_second_of_the_first_thought_the_visitor_sees_it_thinking(
    page: Page, app_api: FakeAPI, shape: str
) -> None:
    """The thought leaves the stand-in 0.5 s after the request, a word every 50 ms, and pauses after 14 words; one
    second after its first word left, the page shows it live in an open, pending fold, and no answer. (M2 thinks
    first, so a reply that starts inside the thinking without its tag shows there at once too.) "none" is the same
    words as an answer from a model that does not think, for comparison. What was seen goes to test-artifacts/."""
    pick_model(page, "minimax/m2" if shape != "none" else "MiniMax-Text-01")
    thinking = {"thinking": THOUGHT, "thinking_shape": shape} if shape != "none" else {}
    app_api.script(Reply(text=ANSWER if thinking else THOUGHT, ttft=0.5, delay=0.05, stall_after=14, **thinking))
    send(page, "Capital of France?")
    app_api.wait_for_message("Capital of France?", timeout=15)
    sent = time.monotonic()  # the request reached the stand-in; its first word leaves 0.5 s later
    page.wait_for_function(  # checked at every frame, not at the back-off of `expect`
        "() => document.querySelector('[data-testid=bot]')?.innerText.includes('The user')", polling="raf"
    )
    first_seen = time.monotonic() - sent
    time.sleep(max(0.0, 1.5 - (time.monotonic() - sent)))  # one second after the first word left the stand-in
    seen = bot(page).first.inner_text()
    shot(page, f"first-second-{shape.replace(':', '-')}")
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "reasoning-first-second.jsonl").open("a", encoding="utf-8") as log:
        observed = {"shape": shape, "first_word_visible_s": round(first_seen - 0.5, 2), "seen_at_1s": seen}
        log.write(json.dumps(observed, ensure_ascii=False) + "\n")
    app_api.release()
    if thinking:
        assert seen.startswith("💭 Thinking…") and "The user asks" in seen and "capital of France is" not in seen
        assert not any(tag in seen for tag in TAGS)
    expect(page.get_by_text(re.compile("to first (thought|token)"))).to_be_visible(timeout=30_000)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_shared_page_shows_the_thought_folded_apart_from_the_answer(
    pages: Pages, tmp_path: Path, scheme: str
) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)}, dotenv_path=None)
    shares = Shares(SQLiteStore(tmp_path / SQLITE_FILE), settings, to_page=share_page.prerender)
    history = [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": THOUGHT, "metadata": {"id": "chat-thought-1", "title": "💭 Thought for 12 s"}},
        {"role": "assistant", "content": ANSWER},
    ]
    shared = shares.create(history, model="minimax/m2", address="198.51.100.1")
    server = TestClient(Starlette(routes=share_page.routes(shares)))

    def serve(route: Any) -> None:  # the page and its files from the share routes, in process
        answer = server.get(urlsplit(route.request.url).path)
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.content)

    page = pages.new(viewport=DESKTOP, color_scheme=scheme)
    page.route("http://share.test/**", serve)
    page.goto(f"http://share.test/share/{shared.id}")
    fold = page.locator("details.thought")
    expect(fold.locator("summary")).to_have_text("💭 Thought for 12 s")
    expect(page.get_by_text("the city proper has")).to_be_hidden()
    expect(page.locator("article.bot")).to_contain_text("The capital of France is Paris")
    shot(page, f"share-folded-{scheme}")
    fold.locator("summary").click()
    expect(page.get_by_text("the city proper has")).to_be_visible()
    assert fold.bounding_box()["y"] < page.locator("article.bot").bounding_box()["y"]  # type: ignore[index]
    assert serious_violations(page) == []
    shot(page, f"share-opened-{scheme}")
