"""Reach: the page on phones and desktops, light and dark, English and Chinese, checked with axe-core and the keyboard.

Screenshots of every state go to test-artifacts/reach-*.png for a person to look at.
"""

from __future__ import annotations

import os

import pytest

from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import Pages, serious_violations

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect

ARTIFACTS = ROOT / "test-artifacts"
PHONES = {"phone": {"width": 390, "height": 844}, "small-phone": {"width": 360, "height": 740}}
DESKTOP = {"width": 1280, "height": 900}
WIDE_REPLY = (
    "Here is a table and some code.\n\n| "
    + " | ".join(f"column {i}" for i in range(14))
    + " |\n|"
    + "---|" * 14
    + "\n| "
    + " | ".join("value" for _ in range(14))
    + " |\n\n```python\n"
    + "print('"
    + "x" * 300
    + "')\n```\n\n"
    + "Supercalifragilistic" * 12
    + "\n\nRequest: `"
    + "0f" * 32
    + "`"
)


def open_page(
    pages: Pages, app: AppProcess, viewport: dict[str, int], *, dark: bool = False, locale: str = "en-US"
) -> Page:
    phone = viewport["width"] < 640
    page = pages.new(
        viewport=viewport,
        locale=locale,
        has_touch=phone,
        is_mobile=phone,
        extra_http_headers={"Accept-Language": f"{locale},en;q=0.5"},
    )
    page.set_default_timeout(15_000)
    page.goto(app.url + ("?__theme=dark" if dark else ""))
    page.locator("#chat-input textarea").wait_for()
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"reach-{name}.png"))


def send(page: Page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    expect(box).to_be_enabled()
    box.fill(text)
    box.press("Enter")


def reply_done(page: Page, count: int = 1) -> None:
    expect(page.locator(".thought-group")).to_have_count(count, timeout=15_000)


TEXTS = {  # what each language shows: the input's placeholder, a notice title, a word of the facts line
    "en-US": ("Message MiniMax…", "Request rejected", "to first token"),
    "zh-CN": ("给 MiniMax 发消息…", "请求被拒绝", "首个 token 用时"),
}


@pytest.mark.parametrize(
    ("screen", "theme", "locale"),
    [
        ("desktop", "light", "en-US"),
        ("phone", "light", "zh-CN"),
        ("desktop", "dark", "zh-CN"),
        ("phone", "dark", "en-US"),
    ],
)
def test_no_serious_axe_violations_in_either_language(
    pages: Pages, live_app: AppProcess, app_api: FakeAPI, screen: str, theme: str, locale: str
) -> None:
    """At load, then after a reply and an error notice with Settings open; the texts are the browser's language."""
    page = open_page(
        pages, live_app, DESKTOP if screen == "desktop" else PHONES["phone"], dark=theme == "dark", locale=locale
    )
    placeholder, error_title, facts_word = TEXTS[locale]
    expect(page.locator("#chat-input textarea")).to_have_attribute("placeholder", placeholder)
    if screen == "desktop":
        expect(page.locator("#new-chat")).to_contain_text("新对话" if locale == "zh-CN" else "New chat")
    found = {"load": serious_violations(page)}
    app_api.script(Reply(text="The answer is **42**, and $x^2$ is fine.", ttft=0.05), Reply(status=400))
    send(page, "What is the answer?")
    reply_done(page)
    expect(page.locator(".thought-group .title").first).to_contain_text(facts_word)
    send(page, "Provoke an error")
    expect(page.get_by_text(error_title)).to_be_visible()
    shot(page, f"{screen}-{theme}-{locale}-reply")
    page.locator(".sidebar .toggle-button").click()
    expect(page.locator("#model input")).to_be_visible()
    page.wait_for_function(
        "() => Math.abs(document.querySelector('.sidebar').getBoundingClientRect().right - innerWidth) < 1"
    )  # the panel has finished sliding in
    shot(page, f"{screen}-{theme}-{locale}-settings")
    found["reply, error and settings"] = serious_violations(page)
    assert found == {"load": [], "reply, error and settings": []}
    sent = [m["content"] for m in app_api.chat_requests()[-1].body["messages"]]
    assert not any(error_title in text or facts_word in text for text in sent)  # the model never gets our notices


@pytest.mark.parametrize("size", list(PHONES))
def test_the_phone_layout_gives_the_conversation_the_screen(
    pages: Pages, live_app: AppProcess, app_api: FakeAPI, size: str
) -> None:
    viewport = PHONES[size]
    page = open_page(pages, live_app, viewport)
    box = page.locator("#chat-input textarea")
    assert box.bounding_box()["y"] + box.bounding_box()["height"] <= viewport["height"]
    first_example = page.locator(".examples .example").first
    assert first_example.bounding_box()["y"] + 20 <= viewport["height"]
    expect(page.locator("#app-description")).to_be_hidden()
    expect(page.locator("#new-chat")).to_be_hidden()
    shot(page, f"{size}-load")
    app_api.script(Reply(chunks=[WIDE_REPLY]))
    send(page, "Show me something wide")
    reply_done(page)
    chat_height = page.locator("[role=log]").bounding_box()["height"]
    assert chat_height >= viewport["height"] * 2 / 3, chat_height
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    words = page.locator("[data-testid=bot] p", has_text="Supercali").first  # wrapped, not cut off
    assert words.bounding_box()["x"] + words.bounding_box()["width"] <= viewport["width"]
    assert words.evaluate("e => e.scrollWidth <= e.clientWidth")
    hash_right = page.locator("[data-testid=bot] p code").first.evaluate("e => e.getBoundingClientRect().right")
    assert hash_right <= words.bounding_box()["x"] + words.bounding_box()["width"] + 1
    facts = page.locator(".thought-group .title").first
    assert float(facts.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")) >= 12
    nothing_floats_over_the_messages(page)
    assert facts.bounding_box()["x"] + facts.bounding_box()["width"] <= viewport["width"]
    shot(page, f"{size}-reply")
    page.locator("#more-toggle").tap()  # one tap brings the description and the saved chats back
    expect(page.locator("#app-description")).to_be_visible()
    expect(page.locator("#new-chat")).to_be_visible()
    expect(page.locator("#more-toggle")).to_have_attribute("aria-expanded", "true")


def nothing_floats_over_the_messages(page: Page) -> None:
    """The conversation's label and its clear and copy-all buttons sit above the scrolling messages, not over
    them (Gradio floats them over the list's top, where they covered a reply's first lines once it scrolled)."""
    top = page.locator("[role=log]").bounding_box()["y"]
    for above in (page.locator("[role=log] >> xpath=.. >> [data-testid=block-label]"), page.locator(".top-panel")):
        assert above.first.bounding_box()["y"] + above.first.bounding_box()["height"] <= top + 1


def tab_to(page: Page, selector: str, most: int, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the focused element matches `selector`, at most `most` times."""
    for _ in range(most):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"the keyboard never reached {selector}")


def test_the_keyboard_alone_reaches_and_sends(pages: Pages, live_app: AppProcess, app_api: FakeAPI) -> None:
    page = open_page(pages, live_app, DESKTOP)
    page.locator("body").click(position={"x": 5, "y": 5})
    tab_to(page, "#chat-input textarea", 30)
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    app_api.script(Reply(text=" ".join(f"slow{i}" for i in range(700)), delay=0.03), Reply(text="Short."))
    page.keyboard.press("Enter")
    app_api.wait_for_requests(1)
    assert app_api.chat_requests()[0].body["messages"][-1]["content"] == "first line\nsecond line"
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    tab_to(page, "button[aria-label='Stop'], button.stop-button", 5)
    page.keyboard.press("Enter")
    # Stop's speed is measured in tests/test_stop.py and bench/; here, on a loaded CI machine with two browsers
    # and apps at once, only that the keyboard's Stop ends the reply (21 s long) well before its end
    assert app_api.chat_requests()[0].client_disconnected.wait(15)
    page.locator("#chat-input textarea").focus()
    tab_to(page, "[role=log] button[aria-label='Copy message']", 40, backwards=True)
    log = page.locator("[role=log]")
    expect(log).to_have_attribute("aria-live", "polite")  # notices and replies inside are announced
    nothing_floats_over_the_messages(page)
