"""Shared read-only links: the snapshot, its limits and expiry, the page's safety, and the whole flow in Chromium."""

from __future__ import annotations

import html.parser
import itertools
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.testclient import TestClient

from chat_backend import i18n
from chat_backend.config import load_settings
from chat_backend.errors import REDACTED
from chat_backend.shared_links import (
    ID_PATTERN,
    ShareRefused,
    Shares,
    build_snapshot,
    link_choices,
    remember,
)
from chat_backend.store import SQLITE_FILE, SQLiteStore, StoreUnavailable, open_store
from tests.app_process import CHROMIUM, AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import SERVER_KEY, Pages, app_on
from tests.redis_server import RedisServer
from web import share_page
from web.markdown import render

SYSTEM_CANARY = "system-canary-31c9 You are a pirate"
VISITOR_KEY = "visitor-canary-88ab1f"
FACTS = re.compile("tokens · .* to first token")  # the per-reply facts line: the reply is complete
HOSTILE = (
    '<script>window.__pwned = "script"</script>\n\n'
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n'
    "[a markdown link](javascript:window.__pwned='markdown')\n\n"
    "<a href=\"javascript:window.__pwned='anchor'\">an html link</a>\n\n"
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>\n\n"
    "<svg onload=\"window.__pwned='svg'\"></svg> $\\href{javascript:window.__pwned=1}{tex link}$\n\n" + "A" * 5_000
)
HISTORY = [
    {
        "role": "user",
        "content": [
            {"type": "file", "file": {"path": "/tmp/x/report.pdf", "orig_name": "report.pdf"}},
            {"type": "text", "text": f"Summarise this. My key is {VISITOR_KEY}"},
        ],
    },
    {"role": "assistant", "content": [{"type": "text", "text": f"Sure. The server uses {SERVER_KEY}."}]},
    {"role": "assistant", "content": "📊 details", "metadata": {"id": "chat-notice-3", "title": "📊 12 → 3 tokens"}},
]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_shares(tmp_path: Path, clock: Clock, **env: str) -> Shares:
    settings = load_settings({"DATA_DIR": str(tmp_path), **env}, dotenv_path=None)
    return Shares(SQLiteStore(tmp_path / SQLITE_FILE, clock=clock), settings, clock=clock, to_page=share_page.prerender)


def test_the_snapshot_holds_what_was_seen_and_no_key_prompt_or_file() -> None:
    snapshot = build_snapshot(HISTORY, model="MiniMax-Text-01", hidden=(SERVER_KEY, VISITOR_KEY, None), now=1.0)
    stored = json.dumps(snapshot)
    assert SERVER_KEY not in stored and VISITOR_KEY not in stored and REDACTED in stored
    assert snapshot["system_prompt"] is None and "/tmp/x" not in stored
    assert snapshot["left_out"] == ["report.pdf"] and snapshot["messages"][0]["files"] == ["report.pdf"]
    assert snapshot["messages"][2] == {"role": "assistant", "text": "📊 details", "notice": "📊 12 → 3 tokens"}
    assert snapshot["title"].startswith("Summarise this.") and snapshot["model"] == "MiniMax-Text-01"
    with_prompt = build_snapshot(HISTORY, model="m", system_prompt=f" {SYSTEM_CANARY} ", now=1.0)
    assert with_prompt["system_prompt"] == SYSTEM_CANARY


@pytest.mark.parametrize("shape", ["browser", "api"])
def test_the_thinking_is_kept_folded_and_apart_from_the_answer(tmp_path: Path, shape: str) -> None:
    thought = f"The user asks about circles.\n\n**Area** is $\\pi r^2$ (key {SERVER_KEY})."
    metadata = {"id": "chat-thought-7", "title": "💭 Thought for 12 s", "status": "done"}
    content: Any = [{"type": "text", "text": thought}] if shape == "browser" else thought
    history = [
        {"role": "user", "content": "Area of a circle?"},
        {"role": "assistant", "content": content, "metadata": metadata},
        {"role": "assistant", "content": "It is πr²."},
    ]
    snapshot = build_snapshot(history, model="minimax/m2", hidden=(SERVER_KEY,), now=1.0)
    assert snapshot["messages"][1] == {
        "role": "assistant",
        "text": thought.replace(SERVER_KEY, REDACTED),
        "thought": "💭 Thought for 12 s",
    }
    assert snapshot["messages"][2] == {"role": "assistant", "text": "It is πr²."}
    shares = make_shares(tmp_path, Clock())
    shared = shares.create(history, model="minimax/m2", address="198.51.100.1", hidden=(SERVER_KEY,))
    page = TestClient(Starlette(routes=share_page.routes(shares))).get(f"/share/{shared.id}").text
    fold = page.index('<details class="thought"><summary>💭 Thought for 12 s</summary>')
    answer = page.index('<article class="message bot">')
    assert fold < page.index("<strong>Area</strong>") < answer  # rendered inside the fold, which is shut
    assert "It is πr²." in page[answer:] and "circles" not in page[answer:] and SERVER_KEY not in page


def test_create_load_delete_and_the_id_is_long_and_random(tmp_path: Path) -> None:
    shares = make_shares(tmp_path, Clock())
    made = {shares.create(HISTORY, model="m", address="198.51.100.1").id for _ in range(5)}
    assert len(made) == 5 and all(re.fullmatch(ID_PATTERN, share_id) for share_id in made)  # 24 chars: 144 bits
    shared = shares.create(HISTORY, model="m", address="198.51.100.1")
    assert shares.load(shared.id)["messages"][1]["html"].startswith("<p>Sure.")
    assert not shares.delete(shared.id, "wrong-token") and shares.load(shared.id)
    assert shares.delete(shared.id, shared.delete_token) and shares.load(shared.id) is None
    assert not shares.delete(shared.id, shared.delete_token)


def test_links_expire_after_the_ttl_and_never_with_zero(tmp_path: Path) -> None:
    clock = Clock()
    shares = make_shares(tmp_path / "a", clock, SHARE_TTL_DAYS="2")
    forever = make_shares(tmp_path / "b", clock, SHARE_TTL_DAYS="0")
    expiring, kept = (
        shares.create(HISTORY, model="m", address="198.51.100.1"),
        forever.create(HISTORY, model="m", address="198.51.100.1"),
    )
    clock.now += 2 * 86400 - 1
    assert shares.load(expiring.id) is not None
    clock.now += 2
    assert shares.load(expiring.id) is None
    clock.now += 10 * 365 * 86400
    assert forever.load(kept.id) is not None and kept.expires is None


def test_limits_refuse_with_a_clear_message(tmp_path: Path) -> None:
    clock = Clock(3600 * 500_000 + 60)
    shares = make_shares(tmp_path, clock, SHARE_PER_HOUR="2", SHARE_MAX_KB="4")
    shares.create(HISTORY, model="m", address="198.51.100.1")
    shares.create(HISTORY, model="m", address="198.51.100.1")
    with pytest.raises(ShareRefused, match="shared 2 conversations this hour.*59 minutes"):
        shares.create(HISTORY, model="m", address="198.51.100.1")
    shares.create(HISTORY, model="m", address="198.51.100.2")
    clock.now += 3600
    shares.create(HISTORY, model="m", address="198.51.100.1")
    long_reply = [*HISTORY, {"role": "assistant", "content": "x" * 5_000}]
    with pytest.raises(ShareRefused, match="at most 4 KB"):
        shares.create(long_reply, model="m", address="198.51.100.1")
    with pytest.raises(ShareRefused, match="nothing to share"):
        shares.create([], model="m", address="198.51.100.1")


BIG_REPLY = [*HISTORY, {"role": "assistant", "content": "x" * 9_000}]  # about 10 KB stored


def test_a_full_store_refuses_new_links_and_removes_nobody_elses(tmp_path: Path) -> None:
    shares = make_shares(tmp_path, Clock(), SHARE_STORE_MB="0.03", SHARE_PER_HOUR="3")
    someone_elses = shares.create(HISTORY, model="m", address="198.51.100.7")
    made = []
    with pytest.raises(ShareRefused, match="space for shared links is full"):
        for number in range(5):
            made.append(shares.create(BIG_REPLY, model="m", address=f"203.0.113.{number}"))
    assert len(made) >= 2 and shares.load(someone_elses.id) and all(shares.load(link.id) for link in made)
    for _ in range(4):  # more than the hourly limit: a refusal does not count
        with pytest.raises(ShareRefused, match="space for shared links is full"):
            shares.create(BIG_REPLY, model="m", address="203.0.113.99")
    assert shares.delete(made[0].id, made[0].delete_token)
    shares.create(BIG_REPLY, model="m", address="203.0.113.99")


def test_one_address_may_fill_only_its_share_of_the_store(tmp_path: Path) -> None:
    shares = make_shares(tmp_path, Clock(), SHARE_PER_ADDRESS_MB="0.025", SHARE_PER_HOUR="0")
    mine = [shares.create(BIG_REPLY, model="m", address="2001:db8:1:2::/64") for _ in range(2)]
    with pytest.raises(ShareRefused, match="Links shared from your network address already hold 25 KB"):
        shares.create(BIG_REPLY, model="m", address="2001:db8:1:2::/64")
    shares.create(BIG_REPLY, model="m", address="2001:db8:9:9::/64")
    assert shares.delete(mine[0].id, mine[0].delete_token)
    shares.create(BIG_REPLY, model="m", address="2001:db8:1:2::/64")


def test_a_failing_store_refuses_the_share_and_the_page_says_try_later(tmp_path: Path) -> None:
    class Broken(SQLiteStore):
        def _connect(self) -> sqlite3.Connection:
            raise sqlite3.OperationalError("disk I/O error")

    shares = Shares(Broken(tmp_path / "x.sqlite3"), load_settings({}, dotenv_path=None), to_page=share_page.prerender)
    with pytest.raises(ShareRefused, match="storage is not responding"):
        shares.create(HISTORY, model="m", address="198.51.100.1")
    with pytest.raises(StoreUnavailable):
        shares.load("A" * 24)
    page = TestClient(Starlette(routes=share_page.routes(shares))).get("/share/" + "A" * 24)
    assert page.status_code == 503 and "Try again in a minute" in page.text


def test_any_process_can_serve_and_delete_a_link(tmp_path: Path) -> None:
    """Two Shares on one store file stand for two replicas: no link lives in process memory."""
    maker, server = make_shares(tmp_path, Clock()), make_shares(tmp_path, Clock())
    shared = maker.create(HISTORY, model="MiniMax-Text-01", address="198.51.100.1")
    client = TestClient(Starlette(routes=share_page.routes(server)))
    page = client.get(f"/share/{shared.id}")
    assert page.status_code == 200 and "Summarise this." in page.text and "MiniMax-Text-01" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-robots-tag"].startswith("noindex") and '<meta name="robots" content="noindex' in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
    assert client.delete(f"/share/{shared.id}", headers={"Authorization": "Bearer nope"}).status_code == 404
    owner = {"Authorization": f"Bearer {shared.delete_token}"}
    assert client.delete(f"/share/{shared.id}", headers=owner).status_code == 204
    gone = client.get(f"/share/{shared.id}")
    assert gone.status_code == 404 and "doesn't lead anywhere" in gone.text and "Start your own chat" in gone.text
    assert client.get("/share/short").status_code == 404
    for name in ("share.js", "share.css", "code.css", "katex.js", "katex.css"):
        assert client.get(f"/share/static/{name}").status_code == 200, name
    assert client.get("/share/static/..%2Fshare.py").status_code == 404


@pytest.mark.parametrize("header", ["zh-CN,zh;q=0.9", "en-US,en;q=0.9"])
def test_the_page_speaks_the_readers_language_and_the_conversation_stays_as_shared(tmp_path: Path, header: str) -> None:
    shares = make_shares(tmp_path, Clock())
    shared = shares.create(HISTORY, model="MiniMax-Text-01", address="198.51.100.1")
    client = TestClient(Starlette(routes=share_page.routes(shares)))
    lang = i18n.language(header)
    for path, status in ((f"/share/{shared.id}", 200), ("/share/" + "B" * 24, 404)):
        page = client.get(path, headers={"Accept-Language": header})
        assert page.status_code == status
        assert f'<html lang="{share_page.LANGUAGE_TAGS[lang]}"' in page.text
        assert i18n.t("sharepage_start", lang) in page.text
        assert f'data-copy="{i18n.t("sharepage_copy", lang)}"' in page.text
    shown = client.get(f"/share/{shared.id}", headers={"Accept-Language": header}).text
    assert i18n.t("sharepage_meta", lang, model="MiniMax-Text-01", date="").strip() in shown
    assert "Summarise this." in shown  # the conversation itself is never translated
    other = client.get(f"/share/{shared.id}", headers={"Accept-Language": "zh" if lang == "en" else "en"}).text
    assert i18n.t("sharepage_start", lang) not in other  # one language's page is not served to the other


def test_redis_serves_links_to_every_replica_and_counts_shares(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        settings = load_settings({"REDIS_URL": server.url, "SHARE_PER_HOUR": "1"}, dotenv_path=None)
        maker, reader = (Shares(open_store(settings), settings, to_page=share_page.prerender) for _ in range(2))
        shared = maker.create(HISTORY, model="m", address="198.51.100.1")
        with pytest.raises(ShareRefused, match="shared 1 conversation this hour"):
            maker.create(HISTORY, model="m", address="198.51.100.1")
        assert reader.load(shared.id)["title"].startswith("Summarise")
        assert 29 * 86400 < redis.Redis.from_url(server.url).ttl(f"chat:share:{shared.id}") <= 30 * 86400
        assert reader.delete(shared.id, shared.delete_token) and maker.load(shared.id) is None
    finally:
        server.stop()


def test_the_browser_keeps_a_bounded_list_of_its_links(tmp_path: Path) -> None:
    shares, links = make_shares(tmp_path, Clock(), SHARE_PER_HOUR="0"), {}
    for _ in range(55):
        links = remember(links, shares.create(HISTORY, model="m", address="198.51.100.1"))
    assert len(links) == 50 and link_choices(links)[0][0].startswith("Summarise this.")
    newest = next(iter(links))
    left, note = shares.delete_own(links, newest)
    assert newest not in left and len(left) == 49 and "Deleted" in note and shares.load(newest) is None
    assert shares.delete_own(left, "never-made")[1].startswith("That link had already")


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


SAFE_TAGS = {
    "p",
    "em",
    "strong",
    "a",
    "img",
    "code",
    "pre",
    "span",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "blockquote",
    "hr",
    "br",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "s",
}
SAFE_ATTRIBUTES = {"href", "src", "alt", "title", "class", "rel", "data-tex", "start", "style"}


@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>\"'=/ $\\()[]`*_!:\nabcjsvrtipo")) | st.characters(), max_size=200)
    | st.sampled_from([HOSTILE, "<a href='javascript:x'>y</a>", "[x](JaVaScRiPt:alert(1))", "![x](javascript:1)"])
)
def test_rendered_markdown_never_holds_markup_that_runs(text: str) -> None:
    parser = _Tags()
    parser.feed(render(text))
    for tag, attributes in parser.found:
        assert tag in SAFE_TAGS, tag
        for name, value in attributes:
            assert name in SAFE_ATTRIBUTES, name
            assert name != "style" or tag in ("th", "td"), (tag, name)  # table alignment only
            if name in ("href", "src"):
                assert not re.match(r"\s*(javascript|vbscript|file):", value or "", re.IGNORECASE), value


def test_share_off_hides_the_button_and_serves_no_page(tmp_path: Path) -> None:
    import app

    environ = {"SHARE": "0", "DATA_DIR": str(tmp_path), "AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1"}
    demo, options = app.build(load_settings(environ, None))
    labels = [str(component.get("props", {}).get("label")) for component in demo.config["components"]]
    assert not any("ui_share" in label for label in labels) and any("ui_model" in label for label in labels)
    assert not [route for route in options["app_kwargs"]["routes"] if route.path.startswith("/share")]


def test_a_visit_renders_no_markdown_the_sharer_paid_for_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproduction (review 8, F3): 50,000 characters of `*[` cost markdown-it ~3 s a render, and visits, which
    no limit counts, re-rendered every link past a cache of 32. Now the page is rendered when the link is made and
    a visit only reads it: with the renderer gone, every visit in either language still shows the whole page."""
    shares = make_shares(tmp_path, Clock())
    hostile = "*[" * 1_000  # 50,000 characters of it took 3 s; a few suffice to show where the rendering happens
    history = [{"role": "user", "content": "**bold** question"}, {"role": "assistant", "content": hostile}]
    links = [shares.create(history, model="m", address="198.51.100.1").id for _ in range(3)]
    stored = shares.load(links[0])
    assert stored and "text" not in stored["messages"][0] and "<em>[</em>[" in stored["messages"][1]["html"]

    def no_render(_text: str) -> str:
        raise AssertionError("a visit rendered Markdown")

    monkeypatch.setattr(share_page, "render", no_render)
    client = TestClient(Starlette(routes=share_page.routes(shares)))
    for share_id, header in itertools.product(links * 20, ("en", "zh")):  # more visits than any cache would hold
        page = client.get(f"/share/{share_id}", headers={"Accept-Language": header})
        assert page.status_code == 200 and "<strong>bold</strong>" in page.text and "<em>[</em>[" in page.text


def test_a_link_stored_before_pages_were_rendered_at_share_time_shows_its_text_plain(tmp_path: Path) -> None:
    shares = make_shares(tmp_path, Clock())
    shared = shares.create(HISTORY, model="m", address="198.51.100.1")
    snapshot = build_snapshot(HISTORY, model="m", system_prompt="Be **brief**", now=Clock().now)
    snapshot["delete_hash"] = shares.load(shared.id)["delete_hash"]
    with sqlite3.connect(tmp_path / SQLITE_FILE) as db:  # the old stored form: texts, no HTML
        db.execute("UPDATE entries SET value = ? WHERE key = ?", (json.dumps(snapshot).encode(), shared.id))
    page = TestClient(Starlette(routes=share_page.routes(shares))).get(f"/share/{shared.id}").text
    assert '<pre class="plain">Be **brief**</pre>' in page and "<strong>" not in page
    assert '<pre class="plain">Summarise this. My key is' in page


def chatbot_value(question: str, answer: str) -> list[dict[str, Any]]:
    """A conversation as the page sends the Chatbot's value: each message's content a list of typed parts."""
    return [
        {"role": role, "content": [{"type": "text", "text": text}]}
        for role, text in (("user", question), ("assistant", answer))
    ]


def share_over_http(url: str, history: list[dict[str, Any]], session: str, address: str) -> tuple[str, str]:
    """The Share button's call as a script makes it: (the link's path or "", the note shown beside it)."""
    dependencies = requests.get(url + "config", timeout=10).json()["dependencies"]
    fn_index = next(index for index, dep in enumerate(dependencies) if dep.get("api_name") == "share")
    answer = requests.post(
        url + "gradio_api/run/predict",
        json={"data": [history, "m", "", False, {}, ""], "fn_index": fn_index, "session_hash": session},
        headers={"X-Forwarded-For": address},
        timeout=30,
    )
    answer.raise_for_status()
    link, note = answer.json()["data"][:2]
    return (link.get("value") or "") if link.get("visible") else "", note.get("value") or ""


def test_rotating_sessions_neither_escape_the_hourly_limit_nor_evict_another_visitors_link(
    shared_api: FakeAPI, tmp_path: Path
) -> None:
    """The reproduction: with SHARE_STORE_MB=2, ~950 KB shares from new sessions deleted someone else's link."""
    app = app_on(shared_api, tmp_path, DATA_DIR=str(tmp_path / "data"), SHARE_STORE_MB="2", SHARE_PER_HOUR="3")
    app.env["TRUSTED_PROXY_HOPS"] = "1"
    app.start()
    huge = chatbot_value("big question", "x" * 940_000)
    small = chatbot_value("small question", "small answer")
    try:
        visitors, _ = share_over_http(app.url, small, "visitor", "198.51.100.7")
        assert visitors.startswith("share/")
        results = [share_over_http(app.url, huge, f"rotating-{n}", "203.0.113.9") for n in range(4)]
        assert [bool(path) for path, _ in results] == [True, True, False, False]
        assert all("space for shared links is full" in note for _, note in results[2:])
        assert requests.get(app.url + visitors, timeout=10).status_code == 200  # never evicted
        assert share_over_http(app.url, small, "rotating-5", "203.0.113.9")[0]  # refusals did not count
        path, note = share_over_http(app.url, small, "rotating-6", "203.0.113.9")
        assert not path and "Your network address has shared 3 conversations this hour" in note
        assert share_over_http(app.url, small, "visitor", "198.51.100.7")[0]  # another address is not affected
    finally:
        app.stop()


# The whole flow in Chromium, against `python app.py` and the stand-in API.

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def share_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("share-app")
    app = app_on(
        shared_api,
        folder,
        DATA_DIR=str(folder / "data"),
        SHARE_PER_HOUR="2",
        SHARE_MAX_KB="40",
        TRUSTED_PROXY_HOPS="1",  # each test's browser comes from an address of its own (see `page`)
    ).start()
    yield app
    app.stop()


@pytest.fixture
def api(shared_api: FakeAPI, share_app: AppProcess) -> Iterator[FakeAPI]:
    shared_api.reset()
    yield shared_api
    shared_api.release()


BROWSER_ADDRESSES = itertools.count(10)


@pytest.fixture
def page(pages: Pages, share_app: AppProcess, api: FakeAPI) -> Page:
    """The app in a new visitor's browser, from an address of its own: the share limits count per address."""
    page = pages.new(viewport={"width": 1280, "height": 900})
    page.set_extra_http_headers({"X-Forwarded-For": f"198.51.100.{next(BROWSER_ADDRESSES)}"})
    page.set_default_timeout(15_000)
    page.goto(share_app.url)
    page.locator("#chat-input textarea").wait_for()
    return page


def chat_and_share(page: Page, text: str, *, system_prompt: str = "", key: str = "") -> None:
    """Send `text`, wait for the reply, then press Share in Settings."""
    page.get_by_role("button", name="Toggle Sidebar").click()
    if system_prompt:
        page.get_by_role("textbox", name="System prompt").fill(system_prompt)
    if key:
        page.get_by_label("Your own AI/ML API key (optional)").fill(key)
    send(page, text, replies=1)
    page.get_by_role("button", name="Share conversation").click()


def send(page: Page, text: str, replies: int) -> None:
    """Send `text` and wait until the reply is complete: the facts line of reply number `replies` is there."""
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")
    expect(page.get_by_text(FACTS)).to_have_count(replies, timeout=30_000)
    expect(box).to_be_enabled()


def shared_link(page: Page) -> str:
    field = page.locator("#share-link").locator("input, textarea")
    expect(field).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/share/[A-Za-z0-9_-]{24}$"))
    return field.input_value()


def open_fresh(browser: Browser, url: str, **options: Any) -> tuple[Page, Any, list[str]]:
    """The link in a new context: no cookies, no storage, as someone who never opened the app."""
    context = browser.new_context(**options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    response = page.goto(url)
    return page, response, problems


def stored_snapshots(app: AppProcess) -> list[bytes]:
    with sqlite3.connect(Path(app.env["DATA_DIR"]) / SQLITE_FILE) as db:
        return [bytes(row[0]) for row in db.execute("SELECT value FROM entries WHERE namespace = 'share'")]


def test_share_open_elsewhere_delete_later_and_see_the_404(
    page: Page, browser: Browser, api: FakeAPI, share_app: AppProcess
) -> None:
    reply = f"The area is $\\pi r^2$.\n\n```python\nprint('hi')\n```\n\n**Done**. (echo: {SERVER_KEY})"
    api.script(Reply(chunks=[reply]))
    question = f"What is the area of a circle? ps my key is {VISITOR_KEY}"
    chat_and_share(page, question, system_prompt=SYSTEM_CANARY, key=VISITOR_KEY)
    url = shared_link(page)
    expect(page.locator("#share-note")).to_contain_text("Anyone with this link can read the conversation.")

    viewer, response, problems = open_fresh(browser, url)
    assert response.status == 200 and response.headers["x-robots-tag"].startswith("noindex")
    expect(viewer.get_by_text("What is the area of a circle?").first).to_be_visible()
    expect(viewer.locator("article.bot strong")).to_have_text("Done")
    expect(viewer.locator("article.bot .katex")).to_have_count(1)  # KaTeX from Gradio's bundle, no CDN…
    assert "KaTeX_Main" in viewer.evaluate("getComputedStyle(document.querySelector('.katex')).fontFamily")  # …styled
    expect(viewer.locator("pre code")).to_contain_text("print('hi')")
    expect(viewer.locator("details.notice summary").first).to_contain_text("tokens")  # the facts, folded
    expect(viewer.locator(".meta")).to_contain_text("abab6.5s-chat")
    expect(viewer.get_by_role("link", name="Start your own chat")).to_have_attribute("href", "../")
    page_text = viewer.content()
    for secret in (SERVER_KEY, VISITOR_KEY, SYSTEM_CANARY):
        assert secret not in page_text
        assert all(secret.encode() not in value for value in stored_snapshots(share_app))
    assert not [p for p in problems if "Content Security Policy" in p], problems
    assert Axe().run(viewer).violations_count == 0
    viewer.context.close()

    page.reload()  # later, in the same browser: the delete token is still there
    page.get_by_role("button", name="Toggle Sidebar").click()
    expect(page.locator("#my-links input")).to_have_value(re.compile("^What is the area of a circle"))
    page.get_by_role("button", name="Delete this link").click()
    expect(page.locator("#share-note")).to_contain_text("Deleted.")
    viewer, response, _ = open_fresh(browser, url)
    assert response.status == 404
    expect(viewer.get_by_role("heading")).to_have_text("This link doesn't lead anywhere")
    viewer.context.close()


def test_hostile_content_stays_inert_on_the_shared_page_on_a_dark_phone(
    page: Page, browser: Browser, api: FakeAPI
) -> None:
    api.script(Reply(chunks=[HOSTILE]))
    chat_and_share(page, "Say something nasty <script>window.__pwned='user'</script>")
    viewer, response, _ = open_fresh(
        browser,
        shared_link(page),
        viewport={"width": 390, "height": 800},
        is_mobile=True,
        has_touch=True,
        color_scheme="dark",
    )
    assert response.status == 200
    reply = viewer.locator("article.bot")
    expect(reply).to_contain_text("AAAAAAAA")
    expect(reply).to_contain_text("<script>")  # shown as text
    for name in ("a markdown link", "an html link", "tex link"):
        for shown in viewer.get_by_text(name).filter(visible=True).all():
            shown.click()
    assert viewer.evaluate("window.__pwned") is None
    assert viewer.locator("main script, main iframe, main [onerror], main [onload], a[href^='javascript']").count() == 0
    assert viewer.evaluate("document.documentElement.scrollWidth") <= 391  # nothing overflows a phone screen
    assert viewer.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"  # the dark theme
    viewer.context.close()


def test_each_refusal_says_why(page: Page, api: FakeAPI) -> None:
    api.script(Reply(text="short"), Reply(chunks=["y" * 45_000]))
    chat_and_share(page, "one")
    first = shared_link(page)
    page.get_by_role("button", name="Share conversation").click()
    expect(page.locator("#share-link").locator("input, textarea")).not_to_have_value(first)
    assert shared_link(page) != first
    page.get_by_role("button", name="Share conversation").click()
    expect(page.locator("#share-note")).to_contain_text("Your network address has shared 2 conversations this hour")
    expect(page.locator("#share-link")).to_be_hidden()
    send(page, "two", replies=2)
    page.get_by_role("button", name="Share conversation").click()
    expect(page.locator("#share-note")).to_contain_text("a shared link holds at most 40 KB")


def test_past_the_pages_markdown_budget_messages_show_as_plain_text(tmp_path: Path) -> None:
    """Hostile Markdown costs markdown-it ~25 µs a character (a 1 MB snapshot took 20 s a visit): a page renders at
    most MARKDOWN_CHARS of it; a message that would pass the budget shows as escaped plain text, the rest go on."""
    shares = make_shares(tmp_path, Clock())
    flood = "![ " * (share_page.MARKDOWN_CHARS // 3 + 1) + "<script>alert(1)</script>"
    history = [
        {"role": "user", "content": "**first**"},
        {"role": "assistant", "content": flood},
        {"role": "user", "content": "**after**"},
    ]
    shared = shares.create(history, model="m", address="198.51.100.1")
    page = TestClient(Starlette(routes=share_page.routes(shares))).get(f"/share/{shared.id}").text
    assert "<strong>first</strong>" in page and "<strong>after</strong>" in page
    [plain] = re.findall(r'<pre class="plain">(.*?)</pre>', page, re.DOTALL)
    assert plain.startswith("![ ![ ") and plain.endswith("&lt;script&gt;alert(1)&lt;/script&gt;")


def test_the_snapshot_hides_the_key_as_it_was_sent_not_only_as_it_was_pasted(tmp_path: Path) -> None:
    """A pasted key carries invisible characters that `check_key` strips before sending: the model can only
    repeat the key as sent, so that is the one the snapshot must hide (issue 24, defect 7)."""
    import gradio as gr

    import app

    sent = "sk-visitor-0123456789abcdef"
    chat = app.ChatApp(load_settings({"DATA_DIR": str(tmp_path), "AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1"}, None))
    history = [{"role": "user", "content": "What is my key?"}, {"role": "assistant", "content": f"It is {sent}."}]
    scope = {"type": "http", "headers": [(b"accept-language", b"en")], "client": ("127.0.0.1", 1)}
    request = gr.Request(request=StarletteRequest(scope), session_hash="s1")
    link, *_ = chat.share(history, "m", "", False, None, f"\u200b{sent} ", request)
    snapshot = chat.shares.load(link["value"].removeprefix("share/"))
    assert snapshot and sent not in json.dumps(snapshot) and "[redacted]" in json.dumps(snapshot)
