"""stream: one call in progress, from the HTTP response to text deltas and the facts of the reply.

`ChatStream` reads the API's server-sent events (or its one JSON answer) and knows the vendor's quirks: the
empty first delta, the `choices: []` usage chunk, `meta.usage` cost, `[DONE]` or a plain end, and an error
object inside the stream. Sending the request is `ChatClient`'s job (it hands over its `post`), and turning
HTTP failures into `ChatError`s is `failures.Failures`'.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions

from . import errors
from .errors import MAX_VENDOR_MESSAGE, ChatError, redact
from .failures import Failures
from .sse import SSEDecoder

Post = Callable[[dict[str, Any], str, str], requests.Response]  # (body, key, client request id) -> response

log = logging.getLogger(__name__)


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


class ChatStream:
    """One call in progress. Iterating sends the request and yields text deltas; closing stops it at once."""

    def __init__(self, post: Post, failures: Failures, body: dict[str, Any], dropped_messages: int, key: str) -> None:
        self.dropped_messages = dropped_messages
        self.result: ChatResult | None = None
        self._post = post
        self._failures = failures
        self._body = body
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
        response = None
        try:
            response = self._response = self._post(self._body, self._key, self._request_id)
            self._inference_id = response.headers.get("x-inference-id")
            if not 200 <= response.status_code < 300:
                raise self._failures.status(response, self._body["model"], self._request_id, self._key)
            if "text/event-stream" in response.headers.get("Content-Type", ""):
                yield from self._read_events(response)
            else:
                yield from self._read_json(response)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            error = self._failures.transport(exc, self._key, streaming=bool(self._chunks))
            raise self._failed(error) from exc
        except ChatError as error:
            self._failed(error)
            raise
        finally:
            if response is not None:
                response.close()
            self._finish()

    def _failed(self, error: ChatError) -> ChatError:
        """Give the error the best request id known and log it, once, whatever failed."""
        error.request_id = error.request_id or self._inference_id or self._request_id
        log.info("chat %s failed: %s", self._request_id, redact(str(error), self._key))
        return error

    def _received(self, text: str) -> str:
        if self._first_token_at is None:
            self._first_token_at = time.monotonic()
        self._chunks.append(text)
        return text

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
            if text := self._absorb(payload):
                yield self._received(text)

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
            yield self._received(text)

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
        kept = errors.KEPT_NOTE if self._chunks else ""
        message = f"The API reported an error in the middle of the reply: “{vendor}”.{kept} Send again to retry."
        return errors.UpstreamError(message, status=status, request_id=self._inference_id, detail=json.dumps(error)[:300])

    def _bad_response(self, message: str, raw: str) -> ChatError:
        return errors.BadResponse(message + " Send again in a moment.", detail=redact(raw[:300], self._key))

    def _finish(self) -> None:
        ended = time.monotonic()
        self.result = ChatResult(
            text=self.text,
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


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
