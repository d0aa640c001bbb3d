"""One chat message through Gradio's queue over raw HTTP (join, then read the event stream), as a script would
send it: every header and the session id are the caller's to choose."""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Any

import requests

from chat_backend.visitor_settings import defaults


@cache
def chat_fn_index(url: str) -> int:
    dependencies = requests.get(url + "config", timeout=10).json()["dependencies"]
    return next(index for index, dep in enumerate(dependencies) if dep.get("api_name") == "chat")


def raw_chat(
    url: str,
    text: str,
    session_hash: str | None = None,
    headers: dict[str, str] | None = None,
    user_key: str = "",
    timeout: float = 30,
) -> str:
    """Send `text` in a session of its own (or `session_hash`); return the final output as JSON text."""
    session_hash = session_hash or uuid.uuid4().hex[:11]
    data: list[Any] = [
        {"text": text, "files": []},
        [],
        *{**defaults(), "max_tokens": 256, "user_key": user_key}.values(),
    ]
    with requests.Session() as http:
        http.headers.update(headers or {})
        joined = http.post(
            url + "gradio_api/queue/join",
            timeout=10,
            json={
                "data": data,
                "fn_index": chat_fn_index(url),
                "trigger_id": None,
                "session_hash": session_hash,
                "event_data": None,
            },
        )
        joined.raise_for_status()
        with http.get(
            url + "gradio_api/queue/data", params={"session_hash": session_hash}, stream=True, timeout=timeout
        ) as events:
            for line in events.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return json.dumps(message.get("output"))
    raise AssertionError("the queue ended without a completed event")
