"""client: the connections to the API, the request body, and the checks made before anything is sent.

`ChatClient.stream_chat` returns a `ChatStream` (stream.py): iterate it for text as it arrives, close it (or
leave its `with` block) to stop, and read `.result` when it is done. The chat call runs on the client's own
connections (transport.py); the Session serves the model catalogue and says which proxy the environment names.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests

from . import errors
from .catalogue import Catalogue, ModelInfo
from .config import Settings, resolve_key
from .i18n import Msg
from .messages import Message, fit_to_context
from .metrics import RETRIES
from .stream import ChatResult, ChatStream
from .transport import Call, Connections
from .upstream_errors import UpstreamErrors
from .visitor_settings import BY_NAME, ChatSettings

USER_AGENT = "minimax-chat/1.0 (+gradio; python-requests)"
HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json, text/event-stream"}


def build_body(messages: list[Message], settings: ChatSettings) -> dict[str, Any]:
    """The request body: only parameters the schema knows, and only those that differ from the API default."""
    body: dict[str, Any] = {**settings.sent(), "messages": messages}
    if settings.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def check_for_model(settings: ChatSettings, model: ModelInfo) -> None:
    """Ranges and parameters that depend on the model (MiniMax-Text-01 caps temperature at 1, and so on)."""
    if settings.temperature is not None and settings.temperature > model.temperature_max:
        raise errors.InvalidSettings(
            key="temperature_max",
            params={"model": model.id, "max": f"{model.temperature_max:g}", "value": f"{settings.temperature:g}"},
        )
    if refused := sorted(model.unsupported & settings.sent().keys()):
        label = Msg(BY_NAME[refused[0]].label_key)
        raise errors.InvalidSettings(key="unsupported_setting", params={"model": model.id, "label": label})


class ChatClient:
    """Owns the connections to the API, the Session and the model catalogue. Safe to share across threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()
        self.session.headers.update(HEADERS)
        self.catalogue = Catalogue(self.session, settings.base_url, settings.catalogue_ttl)
        self.explain = UpstreamErrors(settings, self.catalogue)
        self.connections = Connections(
            f"{settings.base_url}/chat/completions", self.session, keep=settings.concurrency, on_retry=RETRIES.inc
        )

    def stream_chat(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatStream:
        """Check, fit to the context window and prepare one call; nothing is sent until iteration starts."""
        key = resolve_key(user_key, self.settings)
        model = self.catalogue.info(settings.model)
        check_for_model(settings, model)
        fitted = fit_to_context(messages, model.context_length, settings.max_tokens, self.settings.max_history_messages)
        body = build_body(fitted.messages, settings)
        request_id = uuid.uuid4().hex
        # identity: a compressor holds an event stream back until a block fills; a server or proxy that
        # compresses anyway is still decoded (Call.body). The key goes with this call only.
        headers = {**HEADERS, "Authorization": f"Bearer {key}", "X-Client-Request-Id": request_id}
        headers.update({"Content-Type": "application/json", "Accept-Encoding": "identity"})
        call = Call(self.connections, self.settings, json.dumps(body).encode(), headers)
        return ChatStream(call, self.explain, body, key, request_id, fitted.dropped, fitted.by_limit)

    def complete(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatResult:
        """The whole reply at once (streamed or not, per `settings.stream`)."""
        with self.stream_chat(messages, settings, user_key) as stream:
            for _ in stream:
                pass
        assert stream.result is not None
        return stream.result

    def close(self) -> None:
        self.connections.close()
        self.session.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
