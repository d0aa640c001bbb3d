"""client: one shared Session, the request body, and every HTTP failure turned into a `ChatError`.

`ChatClient.stream_chat` returns a `ChatStream` (stream.py): iterate it for text as it arrives, close it (or
leave its `with` block) to stop, and read `.result` when it is done. `transport_error` and `status_error`
here are the one place where `requests` and urllib3 exceptions and error answers are translated.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from . import errors
from .catalogue import Catalogue, ModelInfo
from .config import ChatSettings, Settings, resolve_key
from .errors import MAX_VENDOR_MESSAGE, ChatError, redact
from .messages import Message, fit_to_context
from .retry import make_retry
from .stream import ChatResult, ChatStream

USER_AGENT = "minimax-chat/1.0 (+gradio; python-requests)"
MAX_ERROR_BODY = 64_000


def build_body(messages: list[Message], settings: ChatSettings) -> dict[str, Any]:
    """The request body: only parameters the schema knows, and only those that differ from the API default."""
    body: dict[str, Any] = {"model": settings.model, "messages": messages, "max_tokens": settings.max_tokens}
    optional = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "frequency_penalty": settings.frequency_penalty or None,
        "presence_penalty": settings.presence_penalty or None,
        "seed": settings.seed or None,
    }
    body.update({name: value for name, value in optional.items() if value is not None})
    if settings.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def check_for_model(settings: ChatSettings, model: ModelInfo) -> None:
    """Ranges and parameters that depend on the model (MiniMax-Text-01 caps temperature at 1, and so on)."""
    if settings.temperature is not None and settings.temperature > model.temperature_max:
        raise errors.InvalidSettings(
            f"{model.id} accepts a temperature between 0 and {model.temperature_max:g}, got {settings.temperature:g}."
        )
    if refused := sorted(model.unsupported & build_body([], settings).keys()):
        label = refused[0].replace("_", " ")
        raise errors.InvalidSettings(f"{model.id} does not accept {label}; set it to 0 in Settings.")


class ChatClient:
    """Owns the Session (pooled, retrying) and the model catalogue. Safe to share across threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = requests.Session()
        adapter = HTTPAdapter(
            pool_connections=4,
            pool_maxsize=settings.concurrency,
            max_retries=make_retry(settings.max_retries, settings.retry_budget),
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json, text/event-stream"})
        self.catalogue = Catalogue(self.session, settings.base_url, settings.catalogue_ttl)

    def stream_chat(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatStream:
        """Check, fit to the context window and prepare one call; nothing is sent until iteration starts."""
        key = resolve_key(user_key, self.settings)
        model = self.catalogue.info(settings.model)
        check_for_model(settings, model)
        fitted = fit_to_context(messages, model.context_length, settings.max_tokens, self.settings.max_history_messages)
        return ChatStream(self, build_body(fitted.messages, settings), fitted.dropped, key)

    def complete(self, messages: list[Message], settings: ChatSettings, user_key: str | None = None) -> ChatResult:
        """The whole reply at once (streamed or not, per `settings.stream`)."""
        with self.stream_chat(messages, settings, user_key) as stream:
            for _ in stream:
                pass
        assert stream.result is not None
        return stream.result

    def post(self, body: dict[str, Any], key: str, request_id: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", "X-Client-Request-Id": request_id}
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            return self.session.post(
                f"{self.settings.base_url}/chat/completions", json=body, headers=headers, timeout=timeout, stream=True
            )
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise self.transport_error(exc, key, streaming=False) from exc

    def transport_error(self, exc: Exception, key: str, *, streaming: bool) -> ChatError:
        """Turn a requests/urllib3 failure into a ChatError that tells the user what happened."""
        chain = _causes(exc)

        def caused_by(*types: type[BaseException]) -> bool:
            return any(isinstance(link, types) for link in chain)

        host = urlsplit(self.settings.base_url).hostname
        kept = errors.KEPT_NOTE if streaming else ""
        kind: type[ChatError] = errors.ConnectionFailed
        if caused_by(urllib3.exceptions.NameResolutionError):
            message = f"Could not find the API host {host}. Check the internet connection and AIMLAPI_BASE_URL."
        elif caused_by(ConnectionRefusedError):
            message = f"Could not connect to {host}: the connection was refused. Check AIMLAPI_BASE_URL, or try later."
        elif caused_by(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
            kind = errors.TimedOut
            message = f"Could not connect to {host} within {self.settings.connect_timeout:g} s. Try again in a moment."
        elif caused_by(urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError):
            kind = errors.TimedOut
            message = (f"The API sent nothing for {self.settings.read_timeout:g} s, so the request was abandoned."
                       f"{kept} Try again, or ask for a shorter answer.")
        elif isinstance(exc, requests.exceptions.SSLError):
            message = f"A secure connection to {host} could not be set up (TLS error). Check the system clock and proxy."
        elif streaming:
            kind = errors.StreamBroken
            message = f"The connection to the API was cut while the reply was streaming.{kept} Send again to retry."
        else:
            message = f"The connection to {host} failed before a reply arrived. Try again in a moment."
        detail = redact(" <- ".join(f"{type(link).__name__}: {link}" for link in chain), key)[:500]
        return kind(message, detail=detail)

    def status_error(self, response: requests.Response, model: str, request_id: str, key: str) -> ChatError:
        """The ChatError for a non-2xx answer, with the vendor's message where it helps."""
        status = response.status_code
        text = response.content[:MAX_ERROR_BODY].decode("utf-8", errors="replace")
        body = _parse_json(text)
        vendor = _vendor_message(body)
        vendor_id = body.get("requestId") if isinstance(body, dict) else None
        request_id = (vendor_id if isinstance(vendor_id, str) else None) or response.headers.get("x-inference-id") or request_id
        detail = redact(f"{response.headers.get('Content-Type', '')}: {text[:300]}", key)
        if status == 404 or (status == 400 and self._about_model(model, vendor)):
            kind: type[ChatError] = errors.ModelUnavailable
            if status == 404 and self.catalogue.is_available(model) and model not in vendor:
                kind = errors.EndpointNotFound
                message = f"The API has nothing at {self.settings.base_url}/chat/completions (404). Check AIMLAPI_BASE_URL."
            else:
                message = self.catalogue.unavailable_message(model)
            return kind(message, status=status, request_id=request_id, detail=detail)
        message = errors.STATUS_MESSAGES.get(status, f"The API answered with HTTP {status}.")
        if vendor and status in (400, 429, 500):
            message += f" It said: “{redact(vendor, key)[:MAX_VENDOR_MESSAGE]}”"
        if status == 429:
            wait = response.headers.get("Retry-After", "")
            message += f" Wait {wait} s and send again." if wait.isdigit() else " Wait a minute and send again."
        elif status >= 500:
            message += " This is on the API's side; send again in a moment."
        if body is None and text.strip():
            page = "a web page (probably from a proxy or gateway)" if "<" in text[:200] else "text that is not JSON"
            message += f" The answer was {page}, not the API's own error."
        return errors.error_for_status(status)(message, status=status, request_id=request_id, detail=detail)

    def _about_model(self, model: str, vendor: str) -> bool:
        return not self.catalogue.is_available(model) or model in vendor

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what lies behind it (MaxRetryError.reason, wrapped args, __cause__), outermost first."""
    chain = [exc]
    while len(chain) < 8:
        seen = chain[-1]
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException) and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if not isinstance(inner, BaseException):
            inner = seen.__cause__ or seen.__context__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _vendor_message(body: Any) -> str:
    """The error message from either the vendor's shape ({"message"}) or OpenAI's ({"error": {"message"}})."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    message = body.get("message") or (error.get("message") if isinstance(error, dict) else error)
    if isinstance(message, list):
        message = "; ".join(map(str, message))
    return message.strip() if isinstance(message, str) else ""
