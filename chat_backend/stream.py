"""stream: one reply in progress, from the API's answer to text deltas and the facts of the reply.

`ChatStream` reads the API's server-sent events (or its one JSON answer) and knows the vendor's quirks: the
empty first delta, the `choices: []` usage chunk, `meta.usage` cost, `[DONE]` or a plain end, an error
object inside the stream, and the model's thinking, which `reasoning.Split` keeps apart from the answer.
Sending, reading bytes and stopping are the `Call`'s (transport.py); what a failure means to the visitor is
`UpstreamErrors`' (upstream_errors.py).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from urllib3.response import HTTPResponse

from . import errors, reasoning
from .errors import ChatError, redact
from .i18n import Msg
from .sse import MAX_LINE_BYTES, LineTooLong, ServerSentEvent, SSEDecoder
from .transport import TRANSPORT_ERRORS, Call
from .upstream_errors import MAX_REQUEST_ID, UpstreamErrors, bad_response, quote, stream_error

log = logging.getLogger(__name__)


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
    `reasoning.Thought` pieces, the answer as plain `str`); `close()` stops it at once.

    One thread at a time takes a step (`_turn`): the reader, while it reads, or `close()` when nobody is
    reading. So the steps' generator is never resumed by two threads at once, and whoever ends it sets
    `result`: a stopped reply is always recorded.
    """

    def __init__(
        self,
        call: Call,
        explain: UpstreamErrors,
        body: dict[str, Any],
        key: str,
        request_id: str,
        dropped_messages: int = 0,
        dropped_by_limit: bool = False,
        starts_thinking: bool = False,
    ) -> None:
        self.dropped_messages = dropped_messages
        self.dropped_by_limit = dropped_by_limit
        self.result: ChatResult | None = None
        self._call = call
        self._explain = explain
        self._body = body
        self._key = key
        self._request_id = request_id
        self._text = errors.StreamRedactor(key)  # the content as shown: never the key, even if the model says it
        self._thought_text = errors.StreamRedactor(key)  # the same for thinking sent in a field of its own
        self._split = reasoning.Split(starts_thinking)  # the content's thinking apart from its answer
        self._high_surrogates = {True: "", False: ""}  # thinking, content: a character's first half, the second to come
        self._complete = False  # the model finished the reply: no Stop, no failure, not cut at max_tokens
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._cost: float | None = None
        self._credits: float | None = None
        self._inference_id: str | None = None
        self._first_token_at: float | None = None
        self._started = time.monotonic()  # again when the first step sends
        self._steps: Generator[str, None, None] = self._run()
        self._turn = threading.Lock()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        with self._turn:
            return next(self._steps)

    @property
    def text(self) -> str:
        """All the answer shown so far, also after a failure (the key, if the reply repeated it, replaced)."""
        return self._split.answer

    def shown(self) -> reasoning.Shown:
        """The thought and the answer as they should be displayed now; safe to ask from another thread."""
        return self._split.shown()

    def defer_reads(self, until: float) -> None:
        """Leave what arrives in the socket there until `until` (on `time.monotonic()`), when one read takes it
        all: the reader will not show it sooner (see `Call._pace_socket_reads`)."""
        self._call.read_after = until

    def close(self) -> None:
        """Stop, from any thread: the call ends at once (its socket shut down, a back-off cut short); a reader
        blocked on it wakes and ends the reply itself, otherwise it is ended here."""
        self._call.stop()
        if self._turn.acquire(blocking=False):  # nobody is reading: end the steps here
            try:
                self._steps.close()
                if self.result is None:  # closed before its first step: nothing was sent, and that is recorded
                    self._finish()
            finally:
                self._turn.release()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> Generator[str, None, None]:
        self._started = time.monotonic()
        try:
            response = self._call.open()
            if response is None:  # stopped before an answer came
                return
            inference_id = response.headers.get("x-inference-id")
            self._inference_id = quote(inference_id, MAX_REQUEST_ID, self._key) if inference_id else None
            if not 200 <= response.status < 300:
                raise self._explain.answer(response, self._body["model"], self._request_id, self._key)
            if "text/event-stream" in response.headers.get("Content-Type", ""):
                yield from self._read_events()
            else:
                yield from self._read_json(response)
            if self._call.stopped:
                return
            # the reply ended: what looked like the start of the key was not
            yield from self._split.reasoning(self._thought_text.release()) + self._split.content(self._text.release())
            self._complete = self._finish_reason in (None, "stop")
        except Exception as exc:
            if self._call.stopped:  # the socket was shut down under the reader on purpose: a stop, not a failure
                return
            if isinstance(exc, TRANSPORT_ERRORS):
                error = self._explain.transport(exc, self._key, streaming=self._first_token_at is not None)
                raise self._failed(error) from exc
            if isinstance(exc, ChatError):
                self._failed(exc)
            raise
        finally:
            self._call.close()
            self._finish()

    def _failed(self, error: ChatError) -> ChatError:
        """Give the error the best request id known and log it, once, whatever failed."""
        error.request_id = error.request_id or self._inference_id or self._request_id
        log.info("chat %s failed: %s", self._request_id, redact(str(error), self._key))
        return error

    def _received(self, parts: list[tuple[bool, str]]) -> list[str]:
        """Count the first token's time on arrival (of thinking or answer); return the pieces of thought and answer
        that `parts` (is it thought, its text) make showable now (maybe none). Consecutive parts of one kind are
        taken as one: the split and the redactor work once per read, not once per token."""
        pieces: list[str] = []
        for is_thought, run in groupby((part for part in parts if part[1]), key=lambda part: part[0]):
            if whole := self._whole_characters("".join(text for _, text in run), is_thought):
                pieces += self._show(whole, is_thought)
        return pieces

    def _show(self, text: str, thought: bool) -> list[str]:
        if self._first_token_at is None:
            self._first_token_at = time.monotonic()
        if thought:
            return self._split.reasoning(self._thought_text.add(text))
        return self._split.content(self._text.add(text))

    def _read_events(self) -> Iterator[str]:
        """What each read of the stream makes showable: the events one read brings are taken together, as one
        piece of thought and one of answer, so that what is shown next holds all of them."""
        try:
            for events in SSEDecoder().batches(self._call.body()):
                pieces, done = self._take(events)
                yield from _runs(pieces)
                if done:
                    self._call.drain()  # the reply is complete: finish now, whatever the server does next
                    return
        except LineTooLong as exc:
            raise bad_response(Msg("bad_long_line", {"mib": MAX_LINE_BYTES // 2**20}), exc.start, self._key) from None

    def _take(self, events: list[ServerSentEvent]) -> tuple[list[str], bool]:
        """The pieces `events` make showable, and whether they ended the reply (`[DONE]`: nothing after it counts).
        A bad event raises once what came before it is taken, so that it is kept."""
        parts: list[tuple[bool, str]] = []
        for event in events:
            if event.data == "[DONE]":
                return self._received(parts), True
            try:
                payload = event.json()
            except ValueError:
                self._received(parts)
                raise bad_response(Msg("bad_garbled"), event.data, self._key) from None
            if event.event == "error" or _is_error(payload):
                self._received(parts)
                raise stream_error(payload, self._key, kept=self._first_token_at is not None)
            thought, text = self._absorb(payload)
            parts += [(True, thought), (False, text)]
        return self._received(parts), False

    def _read_json(self, response: HTTPResponse) -> Iterator[str]:
        self._cost = _float(response.headers.get("x-aimlapi-usd-spent"))
        self._credits = _float(response.headers.get("x-aimlapi-credits-used"))
        raw = b"".join(self._call.body()).decode("utf-8", errors="replace")
        try:
            payload = json.loads(raw)
        except ValueError:
            raise bad_response(Msg("bad_page" if "<" in raw[:200] else "bad_not_json"), raw, self._key) from None
        thought, text = self._absorb(payload, key="message")
        if not isinstance(payload, dict) or not payload.get("choices"):
            raise bad_response(Msg("bad_no_reply"), raw, self._key)
        yield from self._received([(True, thought), (False, text)])

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

    def _finish(self) -> None:
        ended = time.monotonic()
        for thought, half in list(self._high_surrogates.items()):  # a first half whose second never came
            if half:
                self._high_surrogates[thought] = ""
                self._show("\ufffd", thought)
        split = self._split
        if not self._call.stopped:  # a failure shows what was held back with its notice; a Stop keeps what was shown
            split.reasoning(self._thought_text.release())
            split.content(self._text.release())
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
            billable=self._call.billable,
            thought=split.thought,
            thought_cut=split.cut,
            time_to_first_thought=since_start(split.thought_started),
            thought_seconds=None if split.thought_started is None else thought_ended - split.thought_started,
        )
        ttft = f"{self.result.time_to_first_token:.3f}s" if self.result.time_to_first_token is not None else "-"
        log.info(
            "chat %s model=%s finish=%s ttft=%s duration=%.2fs",
            self._request_id,
            self.result.model,
            self.result.finish_reason,
            ttft,
            self.result.duration,
        )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid(text: str) -> str:
    """`text` with surrogate pairs joined into their characters and lone surrogates replaced by U+FFFD."""
    if not _SURROGATE.search(text):  # per token: one regex scan, not a Python loop over its characters
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _runs(pieces: list[str]) -> Iterator[str]:
    """Consecutive pieces of one kind (thought or answer) as one, of that kind."""
    for thought, run in groupby(pieces, key=lambda piece: isinstance(piece, reasoning.Thought)):
        text = "".join(run)
        yield reasoning.Thought(text) if thought else text


def _is_error(payload: Any) -> bool:
    """Only a real error (an object or a message) is one: `"error": null` or `{}` in a chunk is not."""
    error = payload.get("error") if isinstance(payload, dict) else None
    return bool(error) and isinstance(error, (dict, str))


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
