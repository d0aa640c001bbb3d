"""Shared pytest fixtures: the stand-in API, the app running against it, Chromium, and awkward ports.
(Shared functions live in tests/helpers.py.)"""

from __future__ import annotations

import web.gradio_import  # noqa: F401  first, as in app.py: the apps built here load Gradio as app.py does

# isort: split
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from playwright.sync_api import Browser, sync_playwright

from tests.app_process import CHROMIUM, CHROMIUM_ARGS, AppProcess, free_port
from tests.fake_api import FakeAPI
from tests.helpers import Pages, app_on

# Two workers on two shared cores: an example's time says nothing about the code under test, so no deadline
# (Hypothesis's 200 ms failed a correct redaction test under load).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

# The test files that take longest, longest first: each starts processes (app.py, a cluster, a venv, Chromium).
LONGEST_FIRST = (
    "test_reasoning_browser.py",
    "test_serving.py",
    "test_cluster.py",
    "test_bench.py",
    "test_reach.py",
    "test_browser.py",
    "test_volume.py",
    "test_quotas.py",
    "test_stop.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`LONGEST_FIRST`, then the rest as collected: the workers take whole files in this order (pyproject's
    addopts), so that no worker ends the run waiting on another's long file."""
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def gradio_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What Gradio reads from this process's environment, for the apps served in it: no analytics calls, and one
    upload folder for the session (never the system's shared /tmp/gradio). Child processes get their own."""
    saved = {name: os.environ.get(name) for name in ("GRADIO_ANALYTICS_ENABLED", "GRADIO_TEMP_DIR")}
    os.environ.update(GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp_path_factory.mktemp("gradio")))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


def _fail_on_schema_errors(api: FakeAPI) -> None:
    bad = [(r.path, r.schema_errors) for r in api.chat_requests() if r.schema_errors]
    if bad and not api.expect_schema_errors:
        pytest.fail(f"chat requests did not match the vendor schema: {bad}", pytrace=False)


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    """A started stand-in API; fails the test if a chat request broke the schema, unless
    the test set `fake_api.expect_schema_errors = True`."""
    api = FakeAPI().start()
    try:
        yield api
    finally:
        api.release()
        api.close()
    _fail_on_schema_errors(api)


@pytest.fixture(scope="session")
def shared_api() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        yield api


@pytest.fixture(autouse=True)
def shared_api_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the shared stand-in, its defaults again: what a test scripted or retired must not
    reach the next one, nor an app a later fixture starts (its catalogue reads the stand-in's models at start, before
    that test's own fixtures reset it: a model retired for a fallback test stayed retired for the share tests)."""
    yield
    if "shared_api" in request.fixturenames:
        request.getfixturevalue("shared_api").reset()


@pytest.fixture(scope="session")
def live_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """`python app.py` with a server key, talking to the shared stand-in API. A process of its own, as tests
    measure its memory, and so that it never waits for the test process's interpreter lock."""
    app = app_on(
        shared_api, tmp_path_factory.mktemp("app"), process=True, AIMLAPI_READ_TIMEOUT="3", AIMLAPI_RETRY_BUDGET="1"
    )
    assert isinstance(app, AppProcess)
    yield app.start()
    app.stop()


@pytest.fixture
def app_api(shared_api: FakeAPI, live_app: AppProcess) -> Iterator[FakeAPI]:
    """The stand-in behind `live_app`, reset for this test and checked against the schema after it."""
    shared_api.reset()
    yield shared_api
    shared_api.release()
    _fail_on_schema_errors(shared_api)


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it, so connecting is refused."""
    return free_port()


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose listen queue is full, so a new connection attempt hangs until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in fillers + [listener]:
            sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, one per test module: the sync API must be gone before other modules'
    tests run their own asyncio loops."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def kept_pages(browser: Browser) -> Iterator[Pages]:
    pages = Pages(browser)
    yield pages
    pages.close()


@pytest.fixture
def pages(kept_pages: Pages) -> Iterator[Pages]:
    """New pages for this test (`pages.new(**context_options)`), in the module's kept contexts; closed after it, with
    what they stored cleared."""
    yield kept_pages
    kept_pages.forget()


@pytest.fixture
def socket_reads(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """What each read of a socket through a socket file (as `http.client` reads the API) brought, in this process
    while the test runs: bytes, or None for a read that found nothing."""
    reads: list[int | None] = []
    read_into = socket.SocketIO.readinto

    def counted(self: socket.SocketIO, buffer: Any) -> int | None:
        reads.append(got := read_into(self, buffer))
        return got

    monkeypatch.setattr(socket.SocketIO, "readinto", counted)
    return reads
