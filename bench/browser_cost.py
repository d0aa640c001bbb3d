"""browser_cost: how busy a browser's main thread is while this app streams a long reply, and how late it ends.

A 2,000-token reply at 100 tokens a second (20 s) comes from the stand-in API; Debian's Chromium shows it
through `python app.py`, and the Chrome DevTools Protocol reports the main thread's busy time
(`Performance.getMetrics` TaskDuration) from Enter to the facts line, at desktop speed and with the CPU
throttled 4x as a mid-range phone. Targets (issue 11): busy <= 15% of the reply's time at desktop speed,
<= 50% throttled, and the reply shown complete within 0.5 s of the stream's end. Run from the repository root:

    python bench/browser_cost.py               # both speeds, writes docs/browser-cost.json
    python bench/browser_cost.py --tokens 300  # quicker

`--per-message` measures the server instead: Gradio calls, HTTP requests and the app's CPU for each message a
page sends, one message after another (100 tokens at 50 a second), for two revisions interleaved (issue 23: at
most 4 Gradio calls a message):

    python bench/browser_cost.py --per-message 10 --compare main HEAD --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from bench.compare import export  # noqa: E402
from bench.run import cpu_seconds  # noqa: E402
from tests.app_process import CHROMIUM, CHROMIUM_ARGS, AppProcess  # noqa: E402
from tests.fake_api import FakeAPI, Reply, _Handler  # noqa: E402

PROSE = "the harbour battery carries the evening peak while panels rest and ice machines run on stored power"
# Set when the facts box (the last message of a reply) is on the page; a cheap check per batch of mutations.
WATCH_JS = """
window.__doneAt = null;
new MutationObserver(() => {
  if (!window.__doneAt && document.querySelector('.thought-group')) window.__doneAt = Date.now() / 1000;
}).observe(document, {subtree: true, childList: true});
"""
GRADIO_CALL = re.compile(r"/gradio_api/(run/predict|queue/join|cancel)")  # one each per call; data streams aside
QUIET_SECONDS = 1.0  # no request for this long after a reply: the page's steps after it are done


def reply_text(tokens: int) -> list[str]:
    """Word-sized tokens in paragraphs of 60, like a long prose answer."""
    return [("\n\n" if i and i % 60 == 0 else " " if i else "") + PROSE.split()[i % 17] for i in range(tokens)]


def measure(
    browser: Any, url: str, api: FakeAPI, stream_ends: list[float], tokens: int, rate: float, throttle: float
) -> dict[str, float]:
    """One reply in a fresh page at the given CPU throttling; seconds busy, reply time and lateness."""
    api.script(Reply(chunks=reply_text(tokens), delay=1.0 / rate))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url)
    box = page.locator("#chat-input textarea")
    box.wait_for()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    page.evaluate(WATCH_JS)
    box.fill("Tell me about the harbour.")
    before = _metrics(cdp)
    sent = time.time()
    box.press("Enter")
    page.wait_for_function("window.__doneAt !== null", polling=250, timeout=(tokens / rate + 60) * 1000)
    done = page.evaluate("window.__doneAt")
    busy, cpu = (after - start for after, start in zip(_metrics(cdp), before, strict=True))
    context.close()
    elapsed = done - sent
    return {
        "throttle": throttle,
        "reply_s": round(elapsed, 2),
        "busy_s": round(busy, 2),
        "busy_share": round(busy / elapsed, 3),
        "cpu_s": round(cpu, 2),
        "late_s": round(done - stream_ends[-1], 2),
        "load_average": os.getloadavg()[0],
    }


def _metrics(cdp: Any) -> tuple[float, float]:
    """The main thread's busy time (wall clock, what the targets use) and its CPU time (robust to other load)."""
    metrics = {metric["name"]: metric["value"] for metric in cdp.send("Performance.getMetrics")["metrics"]}
    return metrics["TaskDuration"], metrics["ThreadTime"]


def per_message(browser: Any, app: AppProcess, api: FakeAPI, messages: int) -> dict[str, float]:
    """Send `messages` messages one after another from one page; Gradio calls, HTTP requests to Gradio and the
    app's CPU per message, its idle CPU (the queue's polling, measured first) taken out."""
    assert app.process is not None
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(60_000)
    requests: list[tuple[float, str]] = []
    page.on("request", lambda r: requests.append((time.monotonic(), r.url)) if "/gradio_api/" in r.url else None)
    page.goto(app.url)
    box = page.locator("#chat-input textarea")
    box.wait_for()
    _quiet(page, requests)
    idle_before, idle_started = cpu_seconds(app.process.pid), time.monotonic()
    page.wait_for_timeout(3000)  # measuring the idle cost, not waiting for anything
    idle_rate = (cpu_seconds(app.process.pid) - idle_before) / (time.monotonic() - idle_started)
    requests.clear()
    before, started = cpu_seconds(app.process.pid), time.monotonic()
    for sent in range(messages):
        page.wait_for_function("(box) => !box.disabled", arg=box.element_handle())
        box.fill(f"Message {sent}")
        box.press("Enter")
        page.locator('[data-testid="bot"]', has_text="tok99").nth(sent).wait_for()
        _quiet(page, requests)
    cpu, elapsed = cpu_seconds(app.process.pid) - before, time.monotonic() - started
    page.context.close()
    calls = sum(1 for _, url in requests if GRADIO_CALL.search(url))
    return {
        "gradio_calls": calls / messages,
        "http_requests": len(requests) / messages,
        "cpu_ms": cpu * 1000 / messages,
        "cpu_ms_less_idle": (cpu - idle_rate * elapsed) * 1000 / messages,
        "idle_cpu_ms_per_s": idle_rate * 1000,
    }


def _quiet(page: Any, requests: list[tuple[float, str]], most: float = 30.0) -> None:
    """Wait until the page has sent nothing to Gradio for QUIET_SECONDS (at most `most` seconds)."""
    deadline = time.monotonic() + most
    while time.monotonic() < deadline:
        last = requests[-1][0] if requests else 0.0
        if time.monotonic() - last >= QUIET_SECONDS:
            return
        page.wait_for_timeout(100)


def run_per_message(args: argparse.Namespace) -> None:
    """Each revision's app in turn, interleaved over `--repeats`, each with a fresh page."""
    chunks = [f"{' ' if i else ''}tok{i}" for i in range(100)]
    with FakeAPI() as api, tempfile.TemporaryDirectory() as folder:
        api.default = Reply(text="".join(chunks), chunks=chunks, delay=0.02)
        apps = []
        for name, revision in zip("AB", args.compare or ["."], strict=False):
            tree, label = export(revision, Path(folder) / name)
            app = AppProcess(
                Path(folder) / f"{name}.log",
                AIMLAPI_BASE_URL=api.base_url,
                AIMLAPI_KEY="bench",
                GRADIO_TEMP_DIR=str(Path(folder) / f"{name}-gradio"),
                RATE_LIMIT_PER_SESSION="0",
            )
            app.cwd = tree
            apps.append((name, label, app.start(timeout=300)))
        rows: list[dict[str, Any]] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for repeat in range(args.repeats):
                    for name, label, app in apps if repeat % 2 == 0 else apps[::-1]:
                        rows.append(
                            {"side": name, "revision": label, **per_message(browser, app, api, args.per_message)}
                        )
                        print(json.dumps(rows[-1]), flush=True)
                browser.close()
        finally:
            for _, _, app in apps:
                app.stop()
    print(_per_message_table(rows, args))
    args.out.write_text(json.dumps({"messages": args.per_message, "rows": rows}, indent=2) + "\n")


def _per_message_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    sides = sorted({(row["side"], row["revision"]) for row in rows})
    lines = [
        f"{args.per_message} messages one after another, {args.repeats} pages per side; median (lowest–highest).",
        "",
        "| side | Gradio calls / message | HTTP requests / message | app CPU ms / message | less idle |",
        "|---|---|---|---|---|",
    ]
    for side, label in sides:
        mine = [row for row in rows if row["side"] == side]

        def cell(key: str, form: str = "{:.0f}", mine: list[dict[str, Any]] = mine) -> str:
            values = [row[key] for row in mine]
            return f"{form.format(statistics.median(values))} ({form.format(min(values))}–{form.format(max(values))})"

        lines.append(
            f"| {side}: {label} | {cell('gradio_calls', '{:.1f}')} | {cell('http_requests', '{:.1f}')} "
            f"| {cell('cpu_ms')} | {cell('cpu_ms_less_idle')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="tokens per second")
    parser.add_argument("--throttle", type=float, action="append", help="CPU throttling rates (default 1 and 4)")
    parser.add_argument("--out", type=Path, help="default: docs/browser-cost.json (docs/browser-calls.json)")
    parser.add_argument("--per-message", type=int, default=0, help="messages a page sends, for calls and server CPU")
    parser.add_argument("--compare", nargs=2, metavar=("REV_A", "REV_B"), help="per message: two revisions or folders")
    parser.add_argument("--repeats", type=int, default=3, help="per message: pages per side")
    args = parser.parse_args()
    if args.per_message:
        args.out = args.out or ROOT / "docs" / "browser-calls.json"
        run_per_message(args)
        return
    args.out = args.out or ROOT / "docs" / "browser-cost.json"
    stream_ends: list[float] = []
    original = _Handler._stream

    def timed_stream(self: _Handler, *parts: Any) -> None:  # note when the stand-in sent its last byte
        original(self, *parts)
        stream_ends.append(time.time())

    _Handler._stream = timed_stream  # type: ignore[method-assign]
    rows = []
    with FakeAPI() as api, tempfile.TemporaryDirectory() as folder:
        app = AppProcess(
            Path(folder) / "app.log",
            AIMLAPI_BASE_URL=api.base_url,
            AIMLAPI_KEY="bench",
            GRADIO_TEMP_DIR=str(Path(folder) / "gradio"),
            RATE_LIMIT_PER_SESSION="0",
        ).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for throttle in args.throttle or [1.0, 4.0]:
                    rows.append(measure(browser, app.url, api, stream_ends, args.tokens, args.rate, throttle))
                    print(json.dumps(rows[-1]), flush=True)
                browser.close()
        finally:
            app.stop()
    args.out.write_text(json.dumps({"tokens": args.tokens, "rate": args.rate, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
