"""stream: property tests of reading a reply from whatever bytes the network hands over.

The answers here are built in memory (a real urllib3 response over a byte buffer, handed over by a `Call` that
sends nothing) so that hypothesis can try thousands of them; the HTTP behaviour itself is tested against the
stand-in in test_client.py and test_stop.py.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3.response import HTTPResponse

from chat_backend import errors
from chat_backend.catalogue import Catalogue
from chat_backend.config import Settings
from chat_backend.errors import MIN_SECRET_CHARS, ChatError
from chat_backend.stream import ChatStream
from chat_backend.transport import Call, Connections
from chat_backend.upstream_errors import UpstreamErrors

KEY = "Zx9Qw2Er7Ty5Ui3Op8As"
BASE_URL = "http://127.0.0.1:9/v1"  # never asked: everything here is read from memory
EXPLAIN = UpstreamErrors(Settings(base_url=BASE_URL), Catalogue(requests.Session(), BASE_URL, 60))
CONNECTIONS = Connections(f"{BASE_URL}/chat/completions", requests.Session(), keep=1, on_retry=lambda: None)

TEXT = st.text(max_size=12) | st.builds(lambda a, b: a + KEY + b, st.text(max_size=300), st.text(max_size=5))
SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8
)
CHUNK = st.fixed_dictionaries(
    {
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={"delta": st.fixed_dictionaries({}, optional={"content": JSON}) | JSON, "finish_reason": JSON},
            )
            | JSON,
            max_size=2,
        )
    },
    optional={
        "usage": st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens"]), JSON) | JSON,
        "meta": JSON,
        "error": JSON,
    },
)


class MemoryCall(Call):
    """A call whose answer is `data`, read from memory."""

    def __init__(self, data: bytes, content_type: str) -> None:
        super().__init__(CONNECTIONS, Settings(base_url=BASE_URL), b"", {})
        self.answer = urllib3.HTTPResponse(
            body=io.BytesIO(data), status=200, headers={"Content-Type": content_type}, preload_content=False
        )

    def _attempt(self) -> HTTPResponse | None:
        self._response = self.answer
        return self.answer


def read(data: bytes, content_type: str = "text/event-stream") -> ChatStream:
    return ChatStream(MemoryCall(data, content_type), EXPLAIN, {"model": "minimax/m1"}, KEY, "request-id")


def expected_text(chunks: list[Any]) -> str | None:
    """The reply a well-behaved reader makes of these chunks, or None if one of them is an error."""
    text = ""
    for chunk in chunks:
        error = chunk.get("error") if isinstance(chunk, dict) else None
        if error and isinstance(error, (dict, str)):
            return None
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        delta = choice.get("delta") if isinstance(choice, dict) else None
        content = delta.get("content") if isinstance(delta, dict) else None
        text += content if isinstance(content, str) else ""
    return text


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(CHUNK | JSON, max_size=5), st.booleans())
def test_any_chunks_give_their_text_or_one_clear_error_and_never_the_key(chunks: list[Any], done: bool) -> None:
    events = [json.dumps(chunk) for chunk in chunks] + (["[DONE]"] if done else [])
    data = b"".join(b"data: " + event.encode() + b"\n\n" for event in events)
    stream = read(data)
    want = expected_text(chunks)
    try:
        shown = "".join(stream)
        assert want is not None and shown == errors.hide(want, KEY)  # the key, where a chunk repeats it, hidden
    except ChatError as error:
        assert want is None
        assert not [KEY[i : i + 5] for i in range(len(KEY) - 4) if KEY[i : i + 5] in f"{error} {error!r}"]
    result = stream.result
    assert result is not None
    if result.usage is not None:
        assert all(type(n) is int and n >= 0 for n in vars(result.usage).values())
    for cost in (result.cost_usd, result.credits_used):
        assert cost is None or cost == cost and abs(cost) != float("inf")


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["text/event-stream", "application/json"]))
def test_any_bytes_end_in_text_or_a_chat_error(data: bytes, content_type: str) -> None:
    try:
        for piece in read(data, content_type):
            assert isinstance(piece, str)
    except ChatError:
        pass


def test_the_log_line_of_a_failure_never_holds_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for pad in range(250, 320):
        payload = {"error": {"message": "x" * pad + KEY, "detail": "y" * pad + KEY}}
        with pytest.raises(ChatError):
            list(read(b"data: " + json.dumps(payload).encode() + b"\n\n"))
    assert "failed" in caplog.text and not [
        KEY[i : i + 5] for i in range(len(KEY) - 4) if KEY[i : i + 5] in caplog.text
    ]


SECRETS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=MIN_SECRET_CHARS, max_size=40)


@given(SECRETS, st.data())
def test_a_reply_that_repeats_the_key_never_shows_it_whole_begun_or_in_pieces(secret: str, data: st.DataObject) -> None:
    """Pieces cut anywhere; the key whole, begun, ended, cut from its middle, or back to back: no update shows
    `FRAGMENT` characters of it in a row, each update only adds to the last, and the end is what the whole text
    redacted at once is."""
    slices = st.tuples(st.integers(0, len(secret)), st.integers(0, len(secret))).map(lambda ab: secret[slice(*ab)])
    parts = data.draw(st.lists(st.one_of(st.text(max_size=12), st.just(secret), slices), max_size=12))
    text = "".join(parts)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=8)))
    whole = errors.hide(text, secret)
    redactor = errors.StreamRedactor(secret)
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        redactor.add(text[start:end])
        assert whole.startswith(redactor.shown)  # so no character of a key that later completes was let out
    redactor.release()
    assert redactor.shown == whole
    shown = whole.replace(errors.REDACTED, "\n")  # the marker apart, no run of the key is left
    assert not any(shown[i : i + errors.FRAGMENT] in secret for i in range(len(shown) - errors.FRAGMENT + 1))
    assert secret not in text or errors.REDACTED in whole


def test_the_stream_shows_the_key_nowhere_when_the_reply_splits_it() -> None:
    pieces = ["Your key: ", KEY[:7], KEY[7:], " and ", KEY[:3], "!"]  # whole, then a start that is not the key
    deltas = ({"choices": [{"index": 0, "delta": {"content": piece}}]} for piece in pieces)
    events = b"".join(b"data: " + json.dumps(delta).encode() + b"\n\n" for delta in deltas)
    stream = read(events + b"data: [DONE]\n\n")
    whole, shown = f"Your key: {errors.REDACTED} and {KEY[:3]}!", ""
    for piece in stream:
        shown += piece
        assert whole.startswith(shown)
    assert shown == stream.result.text == whole
