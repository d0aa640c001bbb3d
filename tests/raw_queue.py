"""Chat messages through Gradio's queue over raw HTTP (join, then read the event stream), as a script would send
them: to the public `/chat` endpoint (`raw_chat`: every header and the session id are the caller's to choose), or
to the page's own steps as its front end does (`RawSession`)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests

from chat_backend.messages import NOTICE_ID
from chat_backend.visitor_settings import defaults
from tests.app_process import AppInProcess, AppProcess

SETTINGS = list({**defaults(), "max_tokens": 256}.values())  # the settings fields, in the table's order


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


class RawSession:
    """One browser session spoken to as Gradio's front end does: queue/join plus the queue/data stream."""

    def __init__(self, app: AppProcess | AppInProcess) -> None:
        self.base = app.url + "gradio_api/"
        self.session_hash = uuid.uuid4().hex[:11]
        config = requests.get(app.url + "config", timeout=10).json()
        self.fn = {dep["api_name"]: index for index, dep in enumerate(config["dependencies"])}

    def queued(self, fn: str, data: list[Any]) -> list[Any] | None:
        """The outputs of `fn`, or None when Gradio (or the app's request guard) refused the call."""
        body = {"data": data, "event_data": None, "fn_index": self.fn[fn], "session_hash": self.session_hash}
        joined = requests.post(self.base + "queue/join", json=body, timeout=10)
        if joined.status_code == 400:  # the request guard (web/guard.py) refused a forged file before Gradio
            return None
        event_id = joined.json()["event_id"]
        with requests.get(
            self.base + "queue/data", params={"session_hash": self.session_hash}, stream=True, timeout=30
        ) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[5:]) if line.startswith(b"data:") else {}
                if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                    return message["output"]["data"] if message["success"] else None
        raise AssertionError(f"{fn} never completed")

    def send(
        self, value: dict[str, Any], history: list[dict[str, Any]] | None = None, settings: list[Any] = SETTINGS
    ) -> Turn | None:
        """Send `value` (text and files) after `history` the way the page does, whatever led to it (Enter, an
        edit, retry, an example): the chat it shows, the new message last, to the reply step, with the settings
        fields' values in the table's order. None if Gradio itself refused the value."""
        marked = {"meta": {"_type": "gradio.FileData"}}  # as the page marks every file it sends
        files = [
            {"type": "file", "file": {**marked, **(f if isinstance(f, dict) else {"path": f})}} for f in value["files"]
        ]
        message = {"role": "user", "content": [*files, {"type": "text", "text": value["text"]}]}
        outputs = self.queued("reply_in_page", [[*(history or []), message], *settings])
        return None if outputs is None else Turn(outputs[0], notice_texts(outputs[0]))

    def edit(self, value: Any) -> list[Any] | None:
        """The chat the edit step makes of `value` as the first message's new text; None if refused."""
        body = {
            "data": [[]],
            "event_data": {"index": 0, "value": value, "previous_value": "hi"},
            "fn_index": self.fn["_edit"],
            "session_hash": self.session_hash,
        }
        response = requests.post(self.base + "run/predict", json=body, timeout=10)
        return response.json()["data"] if response.ok else None


@dataclass
class Turn:
    """The conversation after one message, and the notices among it."""

    chat: list[dict[str, Any]]
    notices: list[str]


def notice_texts(chat: list[dict[str, Any]]) -> list[str]:
    """The text of every warning or attachment notice (not the reply's facts box)."""
    return [
        "".join(part.get("text", "") for part in m["content"]) if isinstance(m["content"], list) else m["content"]
        for m in chat
        if str((m.get("metadata") or {}).get("id", "")).startswith(NOTICE_ID)
        and str(m["metadata"].get("title", "")).startswith(("⚠️", "📎"))
    ]
