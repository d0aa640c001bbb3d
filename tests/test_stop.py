"""Stop ends a reply at once and closes the upstream request, whatever the stream is doing and however the API
answers (every response shape of the stand-in, and through an HTTP proxy), and a stopped reply is recorded:
through chat_backend, through the launched app with Gradio's own cancel (gradio_client), and through the
page's Stop button in Chromium. Each waits on what the stand-in saw, with bounded timeouts."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trustme
from gradio_client.client import Job
from playwright.sync_api import expect

from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.stream import ChatResult, ChatStream
from chat_backend.visitor_settings import ChatSettings
from tests.app_process import ROOT, AppProcess
from tests.fake_api import SHAPES, FakeAPI, Recorded, Reply
from tests.fake_api.proxy import ForwardProxy
from tests.helpers import DEFAULTS, SERVER_KEY, Pages, app_on, chat, gradio_client

PARTIAL = "one two three four five six seven eight"
LONG = " ".join(f"w{i}" for i in range(400))
PROXIED = "keep-alive via proxy"  # the keep-alive shape, through a loopback HTTP forward proxy
TLS = "https"  # the keep-alive shape over TLS, as the real API answers
TUNNELLED = "https via proxy"  # the same through the proxy's CONNECT tunnel
KINDS = [*SHAPES, PROXIED, TLS, TUNNELLED]
LEAVE_WITHIN = 3.0  # seconds; before the fix some shapes never closed at all (the goal, 0.5 s, is measured)
APP_LEAVE_WITHIN = 8.0  # through Gradio's queue on a machine shared by several test runs
PATIENCE = 30.0  # for what a loaded machine may take long to get to


@dataclass(frozen=True)
class Case:
    replies: tuple[Reply, ...]
    ready: str  # what the stand-in must have seen before Stop: "text", "headers", "request" or "refused"


CASES = {
    "tokens-flowing": Case((Reply(text=LONG, delay=0.05),), "text"),
    "silent-before-the-headers": Case((Reply(text="never sent", headers_after=40),), "request"),
    "silent-before-the-first-token": Case((Reply(text="never sent", ttft=40),), "headers"),
    "stalled-mid-reply": Case((Reply(text=PARTIAL, stall_after=3),), "text"),
    "back-off-429": Case((Reply(status=429, headers={"Retry-After": "30"}), Reply(text="never sent")), "refused"),
    "back-off-503": Case((Reply(status=503, headers={"Retry-After": "30"}), Reply(text="never sent")), "refused"),
}
LATENCY: dict[tuple[str, str], float] = {}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Path]]:
    """The stand-in over https with a certificate of a CA made for the test, and that CA's file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with FakeAPI(tls=context) as api:
        yield api, ca_file


@pytest.fixture(scope="module", autouse=True)
def latency_table() -> Iterator[None]:
    """After the module: seconds from Stop to the stand-in seeing the client leave (back-off: to the reader's
    end, nothing sent after), per shape and case, in test-artifacts/stop-latency.md."""
    yield
    if not LATENCY:
        return
    order = [*KINDS, *(f"{path}, {kind}" for path in ("app", "page") for kind in KINDS)]
    shapes = [kind for kind in order if any(shape == kind for shape, _ in LATENCY)]
    lines = ["| case | " + " | ".join(shapes) + " |", "|---" * (len(shapes) + 1) + "|"]
    for case in CASES:
        cells = [f"{LATENCY[shape, case]:.3f}" if (shape, case) in LATENCY else "" for shape in shapes]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / "stop-latency.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n" + "\n".join(lines))


class Reader:
    """Reads a stream in a thread of its own, as the app's relay does."""

    def __init__(self, stream: ChatStream) -> None:
        self.stream, self.pieces = stream, []
        self.error: Exception | None = None
        self.result: ChatResult | None = None
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for piece in self.stream:
                self.pieces.append(piece)
                self.first.set()
        except Exception as error:  # a ChatError, or a bug such as "generator already executing"
            self.error = error
        finally:
            self.result = self.stream.result  # as the app's reader records the reply, at once


def client_for(api: FakeAPI, shape: str, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> ChatClient:
    """A client on `api`, through the proxy for the proxied kinds (its proxy read from the environment)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if shape in (PROXIED, TUNNELLED):
        monkeypatch.setenv("HTTPS_PROXY" if shape == TUNNELLED else "HTTP_PROXY", proxy.url)
    settings = Settings(api_key=SERVER_KEY, base_url=api.base_url, read_timeout=60, retry_budget=60)
    client = ChatClient(settings)
    assert client.catalogue.refresh()
    return client


def ready(request: Recorded, what: str, text: threading.Event | None = None, timeout: float = 10) -> bool:
    """Whether what the case waits for happened within `timeout` (`text`: set when text was read)."""
    events = {
        "text": text or threading.Event(),
        "headers": request.headers_sent,
        "request": threading.Event(),
        "refused": request.connection_closed,  # the refusal was read and its connection closed: now the back-off
    }
    events["request"].set()
    return events[what].wait(timeout)


def shaped(replies: tuple[Reply, ...], shape: str) -> list[Reply]:
    return [replace(reply, shape=shape if shape in SHAPES else "keep-alive") for reply in replies]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape", KINDS)
def test_stop_closes_the_upstream_request_at_once_and_the_reply_is_recorded(
    request: pytest.FixtureRequest, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, shape: str, case: str
) -> None:
    if shape in (TLS, TUNNELLED):
        shared_api, ca_file = request.getfixturevalue("tls_api")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))  # trusted as requests would trust it
    else:
        shared_api = request.getfixturevalue("shared_api")
    shared_api.reset()
    marker = f"stop {shape} {case}"
    shared_api.script_for(marker, *shaped(CASES[case].replies, shape))
    proxied_before = proxy.connections
    with client_for(shared_api, shape, proxy, monkeypatch) as client:
        stream = client.stream_chat([{"role": "user", "content": marker}], ChatSettings(model="MiniMax-Text-01"))
        reader = Reader(stream)
        shared_api.wait_for_message(marker)
        [asked] = shared_api.chat_requests()
        assert ready(asked, CASES[case].ready, reader.first), f"never got to {CASES[case].ready}"
        backing_off = CASES[case].ready == "refused"
        assert not asked.client_disconnected.is_set()
        started = time.monotonic()
        stream.close()  # as Stop does, from another thread
        if backing_off:
            reader.thread.join(LEAVE_WITHIN)
            assert not reader.thread.is_alive(), "the reader went on waiting to retry"
        else:
            assert asked.client_disconnected.wait(LEAVE_WITHIN), "upstream still open"
        LATENCY[shape, case] = time.monotonic() - started
        reader.thread.join(LEAVE_WITHIN)
    assert not reader.thread.is_alive() and reader.error is None  # a stop, not a failure
    assert len(shared_api.chat_requests()) == 1  # nothing sent after the Stop
    result = stream.result
    assert result is not None and result.text == "".join(reader.pieces)
    assert result.billable is not backing_off  # sent and not refused: the API may bill it
    assert (proxy.connections > proxied_before) is (shape in (PROXIED, TUNNELLED))


def test_a_visitor_stopped_during_a_back_off_leaves_the_other_visitors_reply_whole(
    fake_api: FakeAPI, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two visitors share the client's connections; one gets a 503 with Retry-After and stops while waiting.
    Before, its Stop shut the socket the other visitor's reply had taken over from the pool."""
    other_text = " ".join(f"calm{i}" for i in range(60))
    fake_api.script_for("visitor A", Reply(status=503, headers={"Retry-After": "30"}), Reply(text="never sent"))
    fake_api.script_for("visitor B", Reply(text=other_text, delay=0.02))
    with client_for(fake_api, "keep-alive", proxy, monkeypatch) as client:
        client.complete([{"role": "user", "content": "warm up"}], ChatSettings(model="MiniMax-Text-01"))
        settings = ChatSettings(model="MiniMax-Text-01")
        a = Reader(client.stream_chat([{"role": "user", "content": "visitor A"}], settings))
        fake_api.wait_for_message("visitor A")
        refused = next(r for r in fake_api.chat_requests() if "visitor A" in str(r.body))
        assert refused.connection_closed.wait(10)  # A waits to retry now
        b = Reader(client.stream_chat([{"role": "user", "content": "visitor B"}], settings))
        assert b.first.wait(10)
        a.stream.close()
        a.thread.join(LEAVE_WITHIN)
        b.thread.join(30)
    assert not a.thread.is_alive() and a.error is None and a.stream.result is not None
    assert b.error is None and "".join(b.pieces) == other_text, "the other visitor's reply was cut"
    assert [str(r.body).count("visitor A") for r in fake_api.chat_requests()].count(1) == 1


def test_a_reader_resuming_while_stop_ends_the_reply_waits_and_finds_it_recorded(
    fake_api: FakeAPI, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21, item 3: Stop closed the generator from the event loop's thread while the reader's thread resumed
    it; the reader got "generator already executing" and the reply could miss the daily budget. Here the Stop
    is held inside the reply's last step (its log line) while the reader resumes."""
    finishing, go_on, resume = threading.Event(), threading.Event(), threading.Event()

    class HoldTheStop(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "model=" in record.getMessage() and threading.current_thread().name == "stopper":
                finishing.set()
                go_on.wait(10)

    fake_api.script(Reply(text=LONG, delay=0.01))
    hold = HoldTheStop()
    logging.getLogger("chat_backend.stream").addHandler(hold)
    caplog.set_level(logging.INFO, "chat_backend.stream")
    try:
        with client_for(fake_api, "keep-alive", proxy, monkeypatch) as client:
            stream = client.stream_chat([{"role": "user", "content": "race"}], ChatSettings())
            pieces = iter(stream)
            first = next(pieces)
            errors: list[Exception] = []

            def read_the_rest() -> None:
                resume.wait(10)
                try:
                    list(pieces)
                except Exception as error:  # "generator already executing", before
                    errors.append(error)

            reader = threading.Thread(target=read_the_rest, daemon=True)
            reader.start()
            stopper = threading.Thread(target=stream.close, name="stopper", daemon=True)
            stopper.start()
            assert finishing.wait(10)  # the Stop is ending the reply now
            resume.set()
            reader.join(0.5)  # the reader resumes meanwhile: it must wait for the Stop, not fail
            go_on.set()
            stopper.join(LEAVE_WITHIN)
            reader.join(LEAVE_WITHIN)
    finally:
        logging.getLogger("chat_backend.stream").removeHandler(hold)
        go_on.set()
    assert first and not errors, errors
    assert stream.result is not None and stream.result.billable


# Through the launched app and Gradio's own cancel.


@pytest.fixture(scope="module")
def one_slot_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app with room for one upstream call at a time, and a read timeout and retry budget far beyond the
    test's patience (so only Stop can end a silent reply or a back-off)."""
    folder = tmp_path_factory.mktemp("stop")
    env = {"AIMLAPI_READ_TIMEOUT": "60", "AIMLAPI_RETRY_BUDGET": "60", "MAX_UPSTREAM_CALLS": "1"}
    app = app_on(shared_api, folder, **env).start()
    yield app
    app.stop()


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)  # polling the client's view of the job: it offers no event to wait on
    return False


def cancel(job: Job) -> None:
    """gradio_client's cancel, once the client holds the job's event id. Cancelled before that, the client only
    forgets the job and sends nothing to the app (its `check_for_cancel`): with three test workers on two cores,
    the request reached the API before the client had read the id, and three tests failed that way."""
    assert wait_for(lambda: job.communicator is not None and job.communicator.event_id, PATIENCE), "no event id"
    job.cancel()


APP_CASES = [("http1.0", case) for case in CASES] + [
    (shape, case)
    for shape in ("keep-alive", "close", "gzip")
    for case in ("tokens-flowing", "silent-before-the-headers")
]


@pytest.mark.parametrize(("shape", "case"), APP_CASES, ids=[f"{shape}-{case}" for shape, case in APP_CASES])
def test_gradios_cancel_closes_upstream_at_once_and_frees_the_slot(
    one_slot_app: AppProcess, shared_api: FakeAPI, shape: str, case: str
) -> None:
    shared_api.reset()
    marker = f"stop me {shape} {case}"
    shared_api.script_for(marker, *shaped(CASES[case].replies, shape))
    job = gradio_client(one_slot_app.url).submit({"text": marker, "files": []}, *DEFAULTS.values(), api_name="/chat")
    shared_api.wait_for_message(marker, PATIENCE)
    [request] = shared_api.chat_requests()
    if CASES[case].ready == "text":
        assert wait_for(lambda: any("w3" in str(output) or "one" in str(output) for output in job.outputs()), PATIENCE)
    else:
        assert ready(request, CASES[case].ready, timeout=PATIENCE)
    assert not request.client_disconnected.is_set()
    started = time.monotonic()
    cancel(job)
    if CASES[case].ready == "refused":  # the slot is free at once, and no retry ever goes out
        _, final = chat(gradio_client(one_slot_app.url), "next visitor")
        assert time.monotonic() - started < PATIENCE and len(shared_api.chat_requests()) == 2, final
    else:
        assert request.client_disconnected.wait(APP_LEAVE_WITHIN), "upstream still open"
        LATENCY[f"app, {shape}", case] = time.monotonic() - started
        _, final = chat(gradio_client(one_slot_app.url), "next visitor")
    assert final[0]["content"] == "Hello from the stand-in."  # the one upstream slot was given back at once


def test_stop_during_the_fallback_call_closes_it_at_once(one_slot_app: AppProcess, shared_api: FakeAPI) -> None:
    shared_api.reset()
    app = one_slot_app
    try:
        shared_api.deprecated_models = frozenset({"abab6.5s-chat"})  # the app's catalogue still lists it
        shared_api.script(Reply(text="never sent", ttft=40))
        job = gradio_client(app.url).submit(
            {"text": "stop the fallback", "files": []}, *DEFAULTS.values(), api_name="/chat"
        )
        assert wait_for(lambda: len(shared_api.chat_requests()) == 2, PATIENCE)
        refused, fallback = shared_api.chat_requests()
        assert (refused.body["model"], fallback.body["model"]) == ("abab6.5s-chat", "MiniMax-Text-01")
        assert fallback.headers_sent.wait(PATIENCE) and not fallback.client_disconnected.is_set()
        cancel(job)
        assert fallback.client_disconnected.wait(APP_LEAVE_WITHIN), "upstream still open"
        shared_api.deprecated_models = frozenset()
        final, _ = (
            gradio_client(app.url)
            .submit({"text": "next", "files": []}, *{**DEFAULTS, "model": "MiniMax-Text-01"}.values(), api_name="/chat")
            .result(timeout=30)
        )
    finally:
        shared_api.deprecated_models = frozenset()
    assert final[0]["content"] == "Hello from the stand-in."


def test_gradios_cancel_through_an_http_proxy_closes_upstream(
    shared_api: FakeAPI, proxy: ForwardProxy, tmp_path: Path
) -> None:
    """The app configured with HTTP_PROXY (as requests would read it): Stop reaches the API through the proxy.
    Gradio checks its own address through the proxy too, so that one (127.0.0.1) is exempt, and the stand-in
    is called by another name for the same place (localhost)."""
    shared_api.reset()
    env = {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1", "AIMLAPI_READ_TIMEOUT": "60"}
    env["AIMLAPI_BASE_URL"] = shared_api.base_url.replace("127.0.0.1", "localhost")
    app = app_on(shared_api, tmp_path, **env).start()
    try:
        for case in ("silent-before-the-headers", "tokens-flowing"):
            shared_api.reset()
            shared_api.script_for(case, *CASES[case].replies)
            job = gradio_client(app.url).submit({"text": case, "files": []}, *DEFAULTS.values(), api_name="/chat")
            shared_api.wait_for_message(case, PATIENCE)
            [request] = shared_api.chat_requests()
            assert request.headers_sent.wait(PATIENCE) if case == "tokens-flowing" else True
            cancel(job)
            assert request.client_disconnected.wait(APP_LEAVE_WITHIN), f"{case}: upstream still open"
        assert any("/chat/completions" in line for line in proxy.requests)
    finally:
        app.stop()


# Through the page's Stop button.


@pytest.mark.parametrize(
    ("shape", "case"),
    [
        ("keep-alive", "tokens-flowing"),
        ("close", "tokens-flowing"),
        ("http1.0", "tokens-flowing"),  # close-delimited: the body ends when the connection does
        ("http1.0", "silent-before-the-headers"),
    ],
)
def test_the_pages_stop_button_closes_upstream_at_once(
    pages: Pages, one_slot_app: AppProcess, shared_api: FakeAPI, shape: str, case: str
) -> None:
    shared_api.reset()
    shared_api.script_for("Tell me", *shaped(CASES[case].replies, shape))
    page = pages.new(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(PATIENCE * 1000)
    page.goto(one_slot_app.url)
    box = page.locator("#chat-input textarea")
    box.fill("Tell me a long story")
    box.press("Enter")
    shared_api.wait_for_message("Tell me", PATIENCE)
    [request] = shared_api.chat_requests()
    if case == "tokens-flowing":
        expect(page.locator('[data-testid="bot"]').first).to_contain_text("w5", timeout=PATIENCE * 1000)
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for()
    started = time.monotonic()
    stop.click()
    assert request.client_disconnected.wait(APP_LEAVE_WITHIN + 1), "upstream request was not closed"
    LATENCY[f"page, {shape}", case] = time.monotonic() - started
    expect(box).to_be_enabled(timeout=PATIENCE * 1000)
    box.fill("Something else")
    box.press("Enter")
    expect(page.get_by_text("Hello from the stand-in.")).to_be_visible(timeout=PATIENCE * 1000)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "test-artifacts" / f"stop-{shape}-{case}.png"))
