"""client: one shared Session, the request body, and a reply (streamed or not) turned into text and facts.

`ChatClient.stream_chat` returns a `ChatStream`: iterate it for text as it arrives, close it (or leave its
`with` block) to stop, and read `.result` when it is done. Every failure leaves as a `ChatError` from
`errors.py`; this module is the one place where `requests` and urllib3 exceptions are translated.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from . import errors
from .catalogue import Catalogue, ModelInfo
from .config import ChatSettings, Settings, resolve_key
from .errors import ChatError, redact
from .messages import Fitted, Message, fit_to_context
from .retry import make_retry
from .sse import SSEDecoder

log = logging.getLogger(__name__)

USER_AGENT = "minimax-chat/1.0 (+gradio; python-requests)"
MAX_ERROR_BODY = 64_000
MAX_VENDOR_MESSAGE = 300


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class ChatResult:
    """Everything known about one finished (or stopped) reply."""

    text: str
    finish_reason: str | None
    usage: Usage | None
    cost_usd: float | None
    credits_used: float | None
    model: str
    client_request_id: str
    inference_id: str | None
    time_to_first_token: float | None
    duration: float
    dropped_messages: int


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
    body = build_body([], settings)
    for name in sorted(model.unsupported & body.keys()):
        label = name.replace("_", " ")
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
        return ChatStream(self, fitted, settings, key)

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
            raise self.transport_error(exc, request_id, key, streaming=False) from exc

    def transport_error(self, exc: Exception, request_id: str, key: str, *, streaming: bool) -> ChatError:
        """Turn a requests/urllib3 failure into a ChatError that tells the user what happened."""
        chain = _causes(exc)

        def caused_by(*types: type[BaseException]) -> bool:
            return any(isinstance(link, types) for link in chain)

        host = urlsplit(self.settings.base_url).hostname
        detail = redact(" <- ".join(f"{type(link).__name__}: {link}" for link in chain), key)[:500]
        kept = " The part of the reply that arrived is kept above." if streaming else ""
        if caused_by(urllib3.exceptions.NameResolutionError):
            message = f"Could not find the API host {host}. Check the internet connection and AIMLAPI_BASE_URL."
            return errors.ConnectionFailed(message, request_id=request_id, detail=detail)
        if caused_by(ConnectionRefusedError):
            message = f"Could not connect to {host}: the connection was refused. Check AIMLAPI_BASE_URL, or try later."
            return errors.ConnectionFailed(message, request_id=request_id, detail=detail)
        if caused_by(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
            message = f"Could not connect to {host} within {self.settings.connect_timeout:g} s. Try again in a moment."
            return errors.TimedOut(message, request_id=request_id, detail=detail)
        if caused_by(urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError):
            waited = f"The API sent nothing for {self.settings.read_timeout:g} s"
            message = f"{waited}, so the request was abandoned.{kept} Try again, or ask for a shorter answer."
            return errors.TimedOut(message, request_id=request_id, detail=detail)
        if isinstance(exc, requests.exceptions.SSLError):
            message = f"A secure connection to {host} could not be set up (TLS error). Check the system clock and proxy."
            return errors.ConnectionFailed(message, request_id=request_id, detail=detail)
        if streaming:
            message = f"The connection to the API was cut while the reply was streaming.{kept} Send again to retry."
            return errors.StreamBroken(message, request_id=request_id, detail=detail)
        message = f"The connection to {host} failed before a reply arrived. Try again in a moment."
        return errors.ConnectionFailed(message, request_id=request_id, detail=detail)

    def status_error(self, response: requests.Response, model: str, request_id: str, key: str) -> ChatError:
        """The ChatError for a non-2xx answer, with the vendor's message where it helps."""
        status = response.status_code
        request_id = response.headers.get("x-inference-id") or request_id
        text = response.content[:MAX_ERROR_BODY].decode("utf-8", errors="replace")
        body = _parse_json(text)
        vendor = _vendor_message(body)
        request_id = (body.get("requestId") if isinstance(body, dict) and isinstance(body.get("requestId"), str) else None) or request_id
        detail = redact(f"{response.headers.get('Content-Type', '')}: {text[:300]}", key)
        if status == 404 or (status == 400 and self._about_model(model, vendor)):
            if status == 404 and self.catalogue.is_available(model) and model not in vendor:
                message = f"The API has nothing at {self.settings.base_url}/chat/completions (404). Check AIMLAPI_BASE_URL."
            else:
                message = self.catalogue.unavailable_message(model)
            return errors.ModelUnavailable(message, status=status, request_id=request_id, detail=detail)
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


class ChatStream:
    """One call in progress. Iterating sends the request and yields text deltas; closing stops it at once."""

    def __init__(self, client: ChatClient, fitted: Fitted, settings: ChatSettings, key: str) -> None:
        self.dropped_messages = fitted.dropped
        self.result: ChatResult | None = None
        self._client = client
        self._body = build_body(fitted.messages, settings)
        self._key = key
        self._request_id = uuid.uuid4().hex
        self._response: requests.Response | None = None
        self._chunks: list[str] = []
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._cost: float | None = None
        self._credits: float | None = None
        self._inference_id: str | None = None
        self._first_token_at: float | None = None
        self._started = 0.0
        self._iterator: Iterator[str] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    @property
    def text(self) -> str:
        """All the text received so far, also after a failure."""
        return "".join(self._chunks)

    def accumulated(self) -> Iterator[str]:
        """The whole text so far after each delta: what a chat UI displays."""
        text = ""
        for delta in self:
            text += delta
            yield text

    def close(self) -> None:
        """Stop: closes the HTTP response (and so the upstream generation) right away."""
        if self._response is not None:
            self._response.close()
        if self._iterator is not None:
            try:
                self._iterator.close()  # type: ignore[attr-defined]
            except ValueError:
                pass  # running in another thread right now; the closed response ends it

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> Iterator[str]:
        self._started = time.monotonic()
        client, model = self._client, self._body["model"]
        response = None
        try:
            response = self._response = client.post(self._body, self._key, self._request_id)
            self._inference_id = response.headers.get("x-inference-id")
            if not 200 <= response.status_code < 300:
                raise client.status_error(response, model, self._request_id, self._key)
            if "text/event-stream" in response.headers.get("Content-Type", ""):
                yield from self._read_events(response)
            else:
                yield from self._read_json(response)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise client.transport_error(exc, self._request_id, self._key, streaming=bool(self._chunks)) from exc
        except ChatError as exc:
            exc.request_id = exc.request_id or self._inference_id or self._request_id
            log.info("chat %s failed: %s", self._request_id, redact(str(exc), self._key))
            raise
        finally:
            if response is not None:
                response.close()
            self._finish()

    def _read_events(self, response: requests.Response) -> Iterator[str]:
        events = SSEDecoder().iter_bytes(_iter_body(response))
        for event in events:
            if event.data == "[DONE]":
                _drain(events)
                return
            try:
                payload = event.json()
            except ValueError:
                raise self._bad_response("The reply stream contained a garbled piece.", event.data) from None
            if event.event == "error" or (isinstance(payload, dict) and "error" in payload):
                raise self._stream_error(payload)
            text = self._absorb(payload)
            if text:
                self._first_token_at = self._first_token_at or time.monotonic()
                self._chunks.append(text)
                yield text

    def _read_json(self, response: requests.Response) -> Iterator[str]:
        self._cost = _float(response.headers.get("x-aimlapi-usd-spent"))
        self._credits = _float(response.headers.get("x-aimlapi-credits-used"))
        raw = response.content.decode("utf-8", errors="replace")
        try:
            payload = json.loads(raw)
        except ValueError:
            page = "a web page (probably from a proxy)" if "<" in raw[:200] else "something that is not JSON"
            raise self._bad_response(f"The API answered with {page} instead of a reply.", raw) from None
        text = self._absorb(payload, key="message")
        if not isinstance(payload, dict) or not payload.get("choices"):
            raise self._bad_response("The API's answer held no reply.", raw)
        if text:
            self._first_token_at = time.monotonic()
            self._chunks.append(text)
            yield text

    def _absorb(self, payload: Any, key: str = "delta") -> str:
        """Record usage, cost and finish_reason from one chunk (or whole answer); return its text."""
        if not isinstance(payload, dict):
            return ""
        if isinstance(usage := payload.get("usage"), dict):
            self._usage = Usage(*(int(usage.get(name) or 0) for name in ("prompt_tokens", "completion_tokens", "total_tokens")))
        meta = payload.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            self._cost = _float(meta["usage"].get("usd_spent"))
            self._credits = _float(meta["usage"].get("credits_used"))
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""  # the usage chunk has "choices": []
        choice = choices[0]
        self._finish_reason = choice.get("finish_reason") or self._finish_reason
        part = choice.get(key)
        content = part.get("content") if isinstance(part, dict) else None
        return content if isinstance(content, str) else ""

    def _stream_error(self, payload: Any) -> ChatError:
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {"message": str(error or payload)}
        status = error.get("status") or error.get("statusCode") or error.get("code")
        status = int(status) if str(status).isdigit() else None
        vendor = redact(str(error.get("message") or "an unspecified error"), self._key)[:MAX_VENDOR_MESSAGE]
        kept = " The part of the reply that arrived is kept above." if self._chunks else ""
        message = f"The API reported an error in the middle of the reply: “{vendor}”.{kept} Send again to retry."
        return errors.UpstreamError(message, status=status, request_id=self._inference_id, detail=json.dumps(error)[:300])

    def _bad_response(self, message: str, raw: str) -> ChatError:
        return errors.BadResponse(message + " Send again in a moment.", detail=redact(raw[:300], self._key))

    def _finish(self) -> None:
        ended = time.monotonic()
        self.result = ChatResult(
            text="".join(self._chunks),
            finish_reason=self._finish_reason,
            usage=self._usage,
            cost_usd=self._cost,
            credits_used=self._credits,
            model=self._body["model"],
            client_request_id=self._request_id,
            inference_id=self._inference_id,
            time_to_first_token=self._first_token_at - self._started if self._first_token_at else None,
            duration=ended - self._started,
            dropped_messages=self.dropped_messages,
        )
        log.info(
            "chat %s model=%s finish=%s ttft=%s duration=%.2fs",
            self._request_id, self.result.model, self.result.finish_reason,
            f"{self.result.time_to_first_token:.3f}s" if self.result.time_to_first_token is not None else "-",
            self.result.duration,
        )


def _iter_body(response: requests.Response) -> Iterator[bytes]:
    """Bytes as they arrive: each HTTP chunk, or whatever one socket read returns for an unchunked body."""
    if response.raw.chunked:
        yield from response.iter_content(chunk_size=None)
        return
    while chunk := response.raw.read1(65_536):
        yield chunk


def _drain(events: Iterator[object]) -> None:
    """Read what follows `[DONE]` (normally just the end of the chunked body) so the connection goes back
    to the pool; a server that misbehaves there only costs us that connection."""
    try:
        for _ in events:
            pass
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
        pass


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


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
