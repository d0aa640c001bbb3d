"""stream: one call in progress, from the HTTP response to text deltas and the facts of the reply.

`ChatStream` reads the API's server-sent events (or its one JSON answer) and knows the vendor's quirks: the
empty first delta, the `choices: []` usage chunk, `meta.usage` cost, `[DONE]` or a plain end, an error
object inside the stream, and the model's thinking, which `reasoning.Split` keeps apart from the answer.
Sending the request is `ChatClient`'s job (it hands over its `post`), and turning HTTP failures into
`ChatError`s is `failures.Failures`'.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import math
import re
import socket
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from . import errors, reasoning
from .errors import MAX_VENDOR_MESSAGE, ChatError, redact
from .failures import MAX_DETAIL, MAX_REQUEST_ID, TRANSPORT_ERRORS, Failures, quote
from .i18n import Msg
from .sse import MAX_LINE_BYTES, LineTooLong, SSEDecoder
from .stopping import STOPPED, in_back_off

# (body, key, client request id, told the socket before the answer's headers are awaited) -> response
Post = Callable[[dict[str, Any], str, str, Callable[[socket.socket], None]], requests.Response]

log = logging.getLogger(__name__)
DRAIN_GRACE = 0.1  # seconds after `[DONE]` to wait for the end of the body, so the connection can be reused


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reasoning_tokens: int | None = None  # of the completion tokens, those spent thinking (when the API says)


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
    dropped_by_limit: bool = False  # left out for the server's history limit, not the context window
    billable: bool = True  # False: the request never went out, or the API refused it (no 2xx): nothing was billed
    thought: str = ""  # the model's thinking, apart from `text` (see reasoning.py)
    thought_cut: bool = False  # the reply ended (Stop, max_tokens, a cut stream) while it was still thinking
    time_to_first_thought: float | None = None  # `time_to_first_token` is the answer's first token
    thought_seconds: float | None = None  # from the first thought to the first answer token (or the end)


class ChatStream:
    """One call in progress. Iterating sends the request and yields text deltas (the model's thinking as
    `reasoning.Thought` pieces, the answer as plain `str`); closing stops it at once."""

    def __init__(
        self,
        post: Post,
        failures: Failures,
        body: dict[str, Any],
        dropped_messages: int,
        key: str,
        dropped_by_limit: bool = False,
        starts_thinking: bool = False,
    ) -> None:
        self.dropped_messages = dropped_messages
        self.dropped_by_limit = dropped_by_limit
        self.result: ChatResult | None = None
        self._post = post
        self._failures = failures
        self._body = body
        self._key = key
        self._request_id = uuid.uuid4().hex
        self._response: requests.Response | None = None
        self._socket: socket.socket | None = None  # the request's, while its answer's headers are awaited
        self._text = errors.StreamRedactor(key)  # the content as shown: never the key, even if the model says it
        self._thought_text = errors.StreamRedactor(key)  # the same for thinking sent in a field of its own
        self._split = reasoning.Split(starts_thinking)  # the content's thinking apart from its answer
        self._high_surrogates = {True: "", False: ""}  # thinking, content: a character's first half, the second to come
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._cost: float | None = None
        self._credits: float | None = None
        self._inference_id: str | None = None
        self._first_token_at: float | None = None
        self._started = 0.0
        self._billable = False
        self._closed = False
        self._complete = False  # the model finished the reply: no Stop, no failure, not cut at max_tokens
        self._iterator: Generator[str, None, None] | None = None

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    @property
    def text(self) -> str:
        """All the answer shown so far, also after a failure (the key, if the reply repeated it, replaced)."""
        return self._split.answer

    def shown(self) -> reasoning.Shown:
        """The thought and the answer as they should be displayed now; safe to ask from another thread."""
        return self._split.shown()

    def close(self) -> None:
        """Stop: ends the upstream request (and so the generation) at once, from any thread.

        A thread blocked reading the socket can't be interrupted, but shutting the socket down wakes it (it then
        ends quietly) and tells the server at once; nothing here waits for a lock that reader may hold.
        """
        self._closed = True
        response, iterator, sock = self._response, self._iterator, self._socket
        if response is not None:
            _shut_down(response)
        elif sock is not None:  # no answer yet: the headers are still awaited on this socket
            _shut(sock)
        if iterator is not None and inspect.getgeneratorstate(iterator) != inspect.GEN_RUNNING:
            with contextlib.suppress(ValueError):  # another thread resumed it just now; the shut socket ends it there
                iterator.close()  # paused at a yield (or done): its `finally` closes the response, records the result

    def _awaiting(self, sock: socket.socket) -> None:
        """The request went out on `sock` and its answer is awaited: a Stop from now on shuts it down."""
        self._socket = sock
        self._billable = True  # sent: the API may bill it unless it answers with an error status
        if self._closed:  # stopped while the request was being sent
            _shut(sock)

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> Generator[str, None, None]:
        self._started = time.monotonic()
        response = None
        try:
            if self._closed:  # stopped before it started: nothing is sent
                return
            stopping = STOPPED.set(lambda: self._closed)  # a retry's back-off ends at a Stop, sending nothing
            try:
                response = self._response = self._post(self._body, self._key, self._request_id, self._awaiting)
            finally:
                STOPPED.reset(stopping)
            if self._closed:  # stopped while the request was being sent
                return
            inference_id = response.headers.get("x-inference-id")
            self._inference_id = quote(inference_id, MAX_REQUEST_ID, self._key) if inference_id else None
            if not 200 <= response.status_code < 300:
                self._billable = False
                raise self._failures.status(response, self._body["model"], self._request_id, self._key)
            self._billable = True
            if "text/event-stream" in response.headers.get("Content-Type", ""):
                yield from self._read_events(response)
            else:
                yield from self._read_json(response)
            # the reply ended: what looked like the start of the key was not
            yield from self._split.reasoning(self._thought_text.release()) + self._split.content(self._text.release())
            self._complete = self._finish_reason in (None, "stop")
        except Exception as exc:
            if self._closed:  # the socket was shut down under the reader on purpose: a stop, not a failure
                if in_back_off(exc):  # every answer so far was a refusal (429/5xx), none billed
                    self._billable = False
                return
            if isinstance(exc, TRANSPORT_ERRORS):
                error = self._failures.transport(exc, self._key, streaming=self._first_token_at is not None)
                raise self._failed(error) from exc
            if isinstance(exc, ChatError):
                self._failed(exc)
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

    def _received(self, thought: str, text: str) -> list[str]:
        """Count the first token's time on arrival (of thinking or answer); return the pieces of thought and answer
        that can be shown now (maybe none)."""
        pieces: list[str] = []
        for is_thought, raw in ((True, thought), (False, text)):
            if whole := self._whole_characters(raw, is_thought):
                pieces += self._show(whole, is_thought)
        return pieces

    def _show(self, text: str, thought: bool) -> list[str]:
        if self._first_token_at is None:
            self._first_token_at = time.monotonic()
        if thought:
            return self._split.reasoning(self._thought_text.add(text))
        return self._split.content(self._text.add(text))

    def _read_events(self, response: requests.Response) -> Iterator[str]:
        body = _iter_body(response)
        try:
            for event in SSEDecoder().iter_bytes(body):
                if event.data == "[DONE]":
                    _drain(response, body)  # the reply is complete: finish now, whatever the server does next
                    return
                try:
                    payload = event.json()
                except ValueError:
                    raise self._bad_response(Msg("bad_garbled"), event.data) from None
                if event.event == "error" or _is_error(payload):
                    raise self._stream_error(payload)
                yield from self._received(*self._absorb(payload))
        except LineTooLong as exc:
            raise self._bad_response(Msg("bad_long_line", {"mib": MAX_LINE_BYTES // 2**20}), exc.start) from None

    def _read_json(self, response: requests.Response) -> Iterator[str]:
        self._cost = _float(response.headers.get("x-aimlapi-usd-spent"))
        self._credits = _float(response.headers.get("x-aimlapi-credits-used"))
        raw = response.content.decode("utf-8", errors="replace")
        try:
            payload = json.loads(raw)
        except ValueError:
            raise self._bad_response(Msg("bad_page" if "<" in raw[:200] else "bad_not_json"), raw) from None
        thought, text = self._absorb(payload, key="message")
        if not isinstance(payload, dict) or not payload.get("choices"):
            raise self._bad_response(Msg("bad_no_reply"), raw)
        yield from self._received(thought, text)

    def _whole_characters(self, text: str, thought: bool) -> str:
        """`text` as valid Unicode: a character whose UTF-16 halves (JSON escapes) came in two pieces (of the same
        field) is joined, a first half at the end waits for the next piece, and any other lone half becomes U+FFFD;
        a lone half cannot be sent to the browser at all (it is not UTF-8)."""
        text, self._high_surrogates[thought] = self._high_surrogates[thought] + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":
            text, self._high_surrogates[thought] = text[:-1], text[-1]
        return _valid(text)

    def _absorb(self, payload: Any, key: str = "delta") -> tuple[str, str]:
        """Record usage, cost and finish_reason from one chunk (or whole answer); return its thinking (from a field
        of its own) and its content."""
        if not isinstance(payload, dict):
            return "", ""
        if isinstance(usage := payload.get("usage"), dict):  # odd values are ignored: the reply itself is fine
            prompt, completion, total = (
                _count(usage.get(f"{name}_tokens")) for name in ("prompt", "completion", "total")
            )
            details = usage.get("completion_tokens_details")
            thinking = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
            if prompt is not None and completion is not None and total is not None:
                self._usage = Usage(prompt, completion, total, thinking)
        meta = payload.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("usage"), dict):
            self._cost = _float(meta["usage"].get("usd_spent"))
            self._credits = _float(meta["usage"].get("credits_used"))
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return "", ""  # the usage chunk has "choices": []
        choice = choices[0]
        if isinstance(finish_reason := choice.get("finish_reason"), str) and finish_reason:
            self._finish_reason = finish_reason
        part = choice.get(key)
        content = part.get("content") if isinstance(part, dict) else None
        return reasoning.field_text(part), content if isinstance(content, str) else ""

    def _stream_error(self, payload: Any) -> ChatError:
        error = payload.get("error") if isinstance(payload, dict) else None
        error = error if isinstance(error, dict) else {"message": str(error or payload)}
        status = _status(error.get("status") or error.get("statusCode") or error.get("code"))
        said = error.get("message")
        vendor = quote(str(said), MAX_VENDOR_MESSAGE, self._key) if said else Msg("unspecified_error")
        params = {"vendor": vendor, "kept": errors.KEPT if self._first_token_at is not None else ""}
        detail = quote(json.dumps(error, ensure_ascii=False, default=str), MAX_DETAIL, self._key)
        return errors.UpstreamError(
            key="stream_error", params=params, status=status, request_id=self._inference_id, detail=detail
        )

    def _bad_response(self, problem: Msg, raw: str) -> ChatError:
        return errors.BadResponse(
            key="bad_response", params={"problem": problem}, detail=quote(raw, MAX_DETAIL, self._key)
        )

    def _finish(self) -> None:
        ended = time.monotonic()
        for thought, half in list(self._high_surrogates.items()):  # a first half whose second never came
            if half:
                self._high_surrogates[thought] = ""
                self._show("\ufffd", thought)
        split = self._split
        split.end(self._complete)

        def since_start(moment: float | None) -> float | None:
            return None if moment is None else moment - self._started

        thought_ended = split.answer_started if split.answer_started is not None else ended
        self.result = ChatResult(
            text=self.text,
            finish_reason=self._finish_reason,
            usage=self._usage,
            cost_usd=self._cost,
            credits_used=self._credits,
            model=self._body["model"],
            client_request_id=self._request_id,
            inference_id=self._inference_id,
            time_to_first_token=since_start(split.answer_started),
            duration=ended - self._started,
            dropped_messages=self.dropped_messages,
            dropped_by_limit=self.dropped_by_limit,
            billable=self._billable,
            thought=split.thought,
            thought_cut=split.cut,
            time_to_first_thought=since_start(split.thought_started),
            thought_seconds=None if split.thought_started is None else thought_ended - split.thought_started,
        )
        log.info(
            "chat %s model=%s finish=%s ttft=%s duration=%.2fs",
            self._request_id,
            self.result.model,
            self.result.finish_reason,
            f"{self.result.time_to_first_token:.3f}s" if self.result.time_to_first_token is not None else "-",
            self.result.duration,
        )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid(text: str) -> str:
    """`text` with surrogate pairs joined into their characters and lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(text):  # per token: one regex scan, not a Python loop over its characters
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _iter_body(response: requests.Response) -> Iterator[bytes]:
    """Bytes as they arrive, decompressed: each HTTP chunk, or whatever one socket read returns for an
    unchunked body (`read1` with decoding, since a proxy may compress even an event stream)."""
    if response.raw.chunked:
        yield from response.iter_content(chunk_size=None)
        return
    while chunk := response.raw.read1(65_536, decode_content=True):
        yield chunk


def _drain(response: requests.Response, body: Iterator[bytes]) -> None:
    """After `[DONE]`, read the end of the body (normally already here) for at most `DRAIN_GRACE` seconds, so
    the connection goes back to the pool; a body that stays open is not waited for: the caller closes it."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:
        return
    deadline = time.monotonic() + DRAIN_GRACE
    try:
        sock.settimeout(DRAIN_GRACE)
        for _ in body:
            if time.monotonic() > deadline:
                return
    except (*TRANSPORT_ERRORS, ValueError):
        pass


def _shut_down(response: requests.Response) -> None:
    """Shut the response's socket both ways: a reader blocked on it wakes up, and the server sees us leave."""
    connection = getattr(response.raw, "connection", None)  # None once the connection went back to the pool
    sock = getattr(connection, "sock", None)
    if sock is not None:
        _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _is_error(payload: Any) -> bool:
    """Only a real error (an object or a message) is one: `"error": null` or `{}` in a chunk is not."""
    error = payload.get("error") if isinstance(payload, dict) else None
    return bool(error) and isinstance(error, (dict, str))


def _status(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599 else None


def _count(value: Any) -> int | None:
    """A token count, or None for anything that is not a whole number of at least 0."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _float(value: Any) -> float | None:
    """A cost as a finite number, or None: a missing, malformed, NaN or infinite value is ignored."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
