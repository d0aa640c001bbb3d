"""client: one shared Session, the request body, and the checks made before anything is sent.

`ChatClient.stream_chat` returns a `ChatStream` (stream.py): iterate it for text as it arrives, close it (or
leave its `with` block) to stop, and read `.result` when it is done. What fails, while sending or while
reading, is turned into a `ChatError` in one place: `failures.Failures`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import errors
from .catalogue import Catalogue, ModelInfo
from .config import Settings, resolve_key
from .failures import Failures
from .i18n import Msg
from .messages import Message, fit_to_context
from .retry import make_retry
from .stream import ChatResult, ChatStream
from .visitor_settings import BY_NAME, ChatSettings

USER_AGENT = "minimax-chat/1.0 (+gradio; python-requests)"
# Set around one `post` in the thread that sends it: told the socket the answer will come on, before its headers.
_ON_SOCKET: ContextVar[Callable[[socket.socket], None] | None] = ContextVar("on_socket", default=None)


class _ReportsSocket:
    """Hands the socket to the stream about to wait on it, so that a Stop can shut it down even while the API
    (or a gateway in front of it, waiting for the model) has not sent a byte of its answer yet."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        report = _ON_SOCKET.get()
        if report is not None and self.sock is not None:
            report(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_ReportsSocket, HTTPConnection):
    pass


class _HTTPSConnection(_ReportsSocket, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    """requests' adapter, with connections that report their socket (see `_ReportsSocket`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


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
    """Owns the Session (pooled, retrying) and the model catalogue. Safe to share across threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()
        adapter = _Adapter(
            pool_connections=4,
            pool_maxsize=settings.concurrency,
            max_retries=make_retry(settings.max_retries, settings.retry_budget),
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json, text/event-stream"})
        self.catalogue = Catalogue(self.session, settings.base_url, settings.catalogue_ttl)
        self.failures = Failures(settings, self.catalogue)

    def stream_chat(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatStream:
        """Check, fit to the context window and prepare one call; nothing is sent until iteration starts."""
        key = resolve_key(user_key, self.settings)
        model = self.catalogue.info(settings.model)
        check_for_model(settings, model)
        fitted = fit_to_context(messages, model.context_length, settings.max_tokens, self.settings.max_history_messages)
        body = build_body(fitted.messages, settings)
        return ChatStream(self.post, self.failures, body, fitted.dropped, key, dropped_by_limit=fitted.by_limit)

    def complete(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatResult:
        """The whole reply at once (streamed or not, per `settings.stream`)."""
        with self.stream_chat(messages, settings, user_key) as stream:
            for _ in stream:
                pass
        assert stream.result is not None
        return stream.result

    def post(
        self,
        body: dict[str, Any],
        key: str,
        request_id: str,
        on_socket: Callable[[socket.socket], None] | None = None,
    ) -> requests.Response:
        """Send one chat request; `on_socket` gets the socket before the answer's headers are awaited."""
        # identity: a compressed event stream is held back by compressors until a block fills; a server or proxy
        # that compresses anyway is still decoded (stream._iter_body).
        headers = {"Authorization": f"Bearer {key}", "X-Client-Request-Id": request_id, "Accept-Encoding": "identity"}
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        reporting = _ON_SOCKET.set(on_socket)
        try:
            return self.session.post(
                f"{self.settings.base_url}/chat/completions", json=body, headers=headers, timeout=timeout, stream=True
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise self.failures.transport(exc, key, streaming=False) from exc
        finally:
            _ON_SOCKET.reset(reporting)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
