"""Attacks from issue 17 through raw HTTP against the launched app: the requests an attacker would send."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.app_process import ROOT, AppProcess


def event_index(app: AppProcess, name: str) -> int:
    """The fn_index of the UI event Gradio names `name` (the undocumented functions the page calls)."""
    config = requests.get(f"{app.url}config", timeout=10).json()
    return next(event["id"] for event in config["dependencies"] if event.get("api_name") == name)


def run(app: AppProcess, name: str, data: list[Any], session: str = "attacker", **kwargs: Any) -> requests.Response:
    """POST /gradio_api/run/predict for a non-queued UI event, as the page does."""
    body = {"data": data, "fn_index": event_index(app, name), "session_hash": session}
    return requests.post(f"{app.url}gradio_api/run/predict", json=body, timeout=30, **kwargs)


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


def secret_files(tmp_path: Path) -> dict[str, Path]:
    """Files an attacker wants: the app's code, git's config, and a file in the system temp directory
    (where exports used to be written)."""
    git = ROOT / ".git"
    stray = Path(tempfile.mkdtemp(prefix="chat-export-")) / "conversation.md"
    stray.write_text("another visitor's conversation", encoding="utf-8")
    return {"app.py": ROOT / "app.py", "git": git if git.is_file() else git / "config", "export": stray}


# Saved conversations come from the browser's storage with no data model, so Gradio checks none of these shapes.
FORGED_SHAPES = [
    lambda path: {"path": path},
    lambda path: [{"type": "file", "file": {"path": path}}],
    lambda path: {"file": {"path": path}},
    lambda path: {"path": f"{tempfile.gettempdir()}/gradio/../..{path}"},
]


@pytest.mark.parametrize("shape", range(len(FORGED_SHAPES)))
def test_the_conversation_loader_serves_no_file_outside_the_uploads(live_app: AppProcess, tmp_path: Path,
                                                                     shape: int) -> None:
    for name, target in secret_files(tmp_path).items():
        conversation = [{"role": "user", "content": FORGED_SHAPES[shape](str(target))}]
        reply = run(live_app, "_load_conversation", [0, [conversation]])
        urls = served_urls(reply)
        for url in urls:
            fetched = requests.get(url, timeout=10)
            assert not (fetched.ok and fetched.content == target.read_bytes()), f"{name} was served at {url}"
        assert not urls, f"{name}: {reply.text[:300]}"


def test_the_apps_own_files_still_serve(live_app: AppProcess) -> None:
    """The blocked paths cover the app's folder, yet its favicon, avatar and example attachment still load."""
    assert requests.get(f"{live_app.url}favicon.ico", timeout=10).ok
    config = requests.get(f"{live_app.url}config", timeout=10)
    urls = set(re.findall(r'"url":\s*"([^"]*/file=[^"]*)"', config.text))
    assert any(url.endswith("avatar-assistant.png") for url in urls)
    assert any(url.endswith("harbour-microgrid-report.md") for url in urls)
    assert all(requests.get(url, timeout=10).ok for url in urls)
