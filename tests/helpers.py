"""What many test modules share: the key the apps run with, the settings the page sends, one message through
gradio_client and the notices in its answer, the app on the stand-in API, a UI event by name, waiting on a
condition, a PDF, the raw requests and measurements the attack tests make, and axe-core's findings."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from axe_playwright_python.sync_playwright import Axe
from gradio_client import Client
from playwright.sync_api import Browser, BrowserContext, Frame, Page

from chat_backend.messages import NOTICE_ID
from chat_backend.visitor_settings import defaults
from tests.app_process import AppInProcess, AppProcess, make_app
from tests.fake_api import FakeAPI

SERVER_KEY = "canary-key-7d1e5b2a9c"  # recognisable, so leak tests can search for it
DEFAULTS: dict[str, Any] = {**defaults(), "max_tokens": 256}  # the page's settings, in the API's order


def app_on(api: FakeAPI, folder: Path, *, process: bool = False, **env: str) -> AppProcess | AppInProcess:
    """The app (not started) talking to `api` with the server key and no message or volume limits, its log and data in
    `folder`; `env` adds or overrides settings. In this process unless `process` is set or `env` needs a process
    of its own (`tests.app_process.make_app` says which)."""
    defaults = {
        "AIMLAPI_BASE_URL": api.base_url,
        "AIMLAPI_KEY": SERVER_KEY,
        "RATE_LIMIT_PER_SESSION": "0",
        "RATE_LIMIT_PER_ADDRESS": "0",
        "BODY_MB_PER_MINUTE": "0",
        "UPLOAD_MB_PER_MINUTE": "0",
        "UPLOAD_PER_ADDRESS_MB": "0",
    }
    return make_app(folder / "app.log", process=process, **{**defaults, **env})


def gradio_client(url: str, **options: Any) -> Client:
    """gradio_client's `Client` for an app on loopback HTTP. `ssl_verify=False` because there is no TLS to verify: with
    it on, gradio_client makes an httpx client for each request, and each loads the system's CA bundle (30 ms of
    CPU; about a tenth of what the tests' own processes spent)."""
    return Client(url, verbose=False, ssl_verify=False, **options)


def chat(client: Client, text: str, **settings: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """Send one message; return every streamed output and the final list of messages."""
    outputs, final, _ = chat_with_model(client, text, **settings)
    return outputs, final


def chat_with_model(client: Client, text: str, **settings: Any) -> tuple[list[Any], list[dict[str, Any]], Any]:
    """Send one message; return every streamed reply, the final list of messages, and the Model output
    (an update naming the new model when the fallback answered)."""
    values = {**DEFAULTS, **settings}
    job = client.submit({"text": text, "files": []}, *values.values(), api_name="/chat")
    final, model = job.result(timeout=30)
    outputs = [reply for reply, _ in job.outputs()]
    return outputs, final if isinstance(final, list) else [{"role": "assistant", "content": final}], model


def notices(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if str((m.get("metadata") or {}).get("id", "")).startswith(NOTICE_ID)]


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition()` came true within `timeout` seconds: for what offers no event to wait on."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # polling the condition itself
    return True


def run_event(url: str, name: str, data: list[Any], session: str, **kwargs: Any) -> requests.Response:
    """POST /gradio_api/run/predict for the page's non-queued event Gradio names `name`, as the page does."""
    config = requests.get(f"{url}config", timeout=10).json()
    index = next(event["id"] for event in config["dependencies"] if event.get("api_name") == name)
    body = {"data": data, "fn_index": index, "session_hash": session}
    return requests.post(f"{url}gradio_api/run/predict", json=body, timeout=30, **kwargs)


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for page_text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({page_text}) Tj ET"
        page_number = len(objects) + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_number + 1} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        kids.append(f"{page_number} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def event_index(app: AppProcess, name: str) -> int:
    """The fn_index of the UI event Gradio names `name` (the undocumented functions the page calls)."""
    config = requests.get(f"{app.url}config", timeout=10).json()
    return next(event["id"] for event in config["dependencies"] if event.get("api_name") == name)


def chat_step(app: AppProcess) -> int:
    """The fn_index of a non-queued server step that takes the chat value alone: an edit's first step, told of the
    edit by the body's `event_data` (`{"index": 0, "value": "shorter", "previous_value": "lorem"}`)."""
    config = requests.get(f"{app.url}config", timeout=10).json()
    kinds = {component["id"]: component["type"] for component in config["components"]}
    return next(
        event["id"]
        for event in config["dependencies"]
        if not event["queue"] and event["backend_fn"] and [kinds[i] for i in event["inputs"]] == ["chatbot"]
    )


def served_urls(response: requests.Response) -> list[str]:
    """Every /gradio_api/file= URL in a reply."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("url"), str) and "/file=" in value["url"]:
                found.append(value["url"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(response.json() if response.headers.get("content-type", "").startswith("application/json") else None)
    return found


def chat_value(size: int) -> list[dict[str, Any]]:
    """A well-formed chat value of about `size` bytes, as the page sends it."""
    text = "lorem ipsum " * (size // 12)
    return [
        {"role": "user", "content": [{"type": "text", "text": text}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]


def raw_post(app: AppProcess, path: str, body: bytes, chunked: bool = False) -> int:
    """POST `body` over a plain socket and return the status; the server may answer (and close) before the
    body is all sent, as it should for a body over the limit, so a reset while sending is expected."""
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{app.port}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        try:
            for start in range(0, len(body), 1 << 20):
                piece = body[start : start + (1 << 20)]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            sock.sendall(b"0\r\n\r\n" if chunked else b"")
        except OSError:
            pass  # answered and closed early
        reply = sock.makefile("rb").readline()
    return int(reply.split()[1])


def rss_mb(app: AppProcess) -> float:
    assert app.process is not None
    status = Path(f"/proc/{app.process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1000


def cache_bytes(app: AppProcess) -> int:
    return sum(path.stat().st_size for path in Path(app.env["GRADIO_TEMP_DIR"]).rglob("*") if path.is_file())


AXE = Axe()


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    results: Any = AXE.run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


STORED = "cookies,local_storage,indexeddb,service_workers,cache_storage"  # what a visit may leave


class Pages:
    """Chromium pages kept for a test module, in one context per set of options. Gradio's page costs Chromium about
    4.4 s of CPU to load in a new context (no HTTP or compiled-code cache), 3.6 s in a new tab of a kept one, and
    1.7 s in a kept tab, on 2 cores. `forget` (after each test) takes the tabs back: it drops their routes, clears
    cookies and what the origins they visited stored, and leaves them blank, so the next test's page meets the app
    as a new visitor's would. (Event listeners a test added stay; they only feed that test's own objects.)"""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: dict[str, BrowserContext] = {}
        self.visited: dict[str, set[str]] = {}
        self.idle: dict[str, list[Page]] = {}
        self.lent: list[tuple[str, Page]] = []

    def new(self, viewport: dict[str, int] | None = None, color_scheme: str = "light", **options: Any) -> Page:
        """A blank page of `viewport` size (Playwright's default if none) and `color_scheme`, set on the page so
        that contexts are shared across them, in the context made with `options` (`Browser.new_context`'s)."""
        key = json.dumps(options, sort_keys=True)
        if key not in self.contexts:
            context = self.contexts[key] = self.browser.new_context(**options)
            visited = self.visited[key] = set()
            self.idle[key] = []

            def note(frame: Frame) -> None:
                parts = urlsplit(frame.url)
                if parts.scheme in ("http", "https"):
                    visited.add(f"{parts.scheme}://{parts.netloc}")

            context.on("page", lambda page: page.on("framenavigated", note))
        page = self.idle[key].pop() if self.idle[key] else self.contexts[key].new_page()
        page.set_viewport_size(viewport or {"width": 1280, "height": 720})  # type: ignore[arg-type]
        page.emulate_media(color_scheme=color_scheme)  # type: ignore[arg-type]
        page.set_default_timeout(30_000)
        page.set_extra_http_headers({})
        self.lent.append((key, page))
        return page

    def forget(self) -> None:
        for key, page in self.lent:
            if not page.is_closed():
                page.unroute_all(behavior="ignoreErrors")
                if page.url.startswith("http"):
                    page.evaluate("sessionStorage.clear()")
                page.goto("about:blank")
                self.idle[key].append(page)
        self.lent.clear()
        for key, context in self.contexts.items():
            if self.visited[key]:
                cdp = context.new_cdp_session(self.idle[key][0] if self.idle[key] else context.new_page())
                for origin in self.visited[key]:
                    cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": STORED})
                cdp.detach()
                self.visited[key].clear()
            for page in context.pages:
                if page not in self.idle[key]:
                    page.close()  # tabs the test opened
            context.clear_cookies()

    def close(self) -> None:
        for context in self.contexts.values():
            context.close()
