"""client: streaming and non-streaming calls through the real HTTP stack against the stand-in API."""

from __future__ import annotations

import concurrent.futures
import email.utils
import gzip
import http.client
import io
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_backend import errors, transport
from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.stream import ChatResult
from chat_backend.transport import retry_after
from chat_backend.visitor_settings import ChatSettings
from tests.fake_api import SHAPES, FakeAPI, Reply

KEY = "test-key-4f1c9e2b7a"  # as long as a real key: shorter strings are not redacted
ALLOWED_KEYS = {
    "model",
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "stream",
    "stream_options",
}


# Long enough that a loaded CI machine never times a reply out (1 s did); tests of the timeout ask for SHORT_READ.
PATIENT_READ, SHORT_READ = 10.0, 1.0


def make_client(api: FakeAPI, **overrides: object) -> ChatClient:
    """A client on the stand-in whose catalogue is loaded, as the app's is once it has started."""
    values: dict = dict(
        api_key=KEY, base_url=api.base_url, connect_timeout=2.0, read_timeout=PATIENT_READ, retry_budget=3.0
    )
    values.update(overrides)
    chat_client = ChatClient(Settings(**values))
    assert chat_client.catalogue.refresh()
    return chat_client


@pytest.fixture
def client(fake_api: FakeAPI) -> Iterator[ChatClient]:
    with make_client(fake_api) as chat_client:
        yield chat_client


def _sse_bytes(payload: object) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def ask(client: ChatClient, text: str = "Hi", **settings: object) -> ChatResult:
    return client.complete([{"role": "user", "content": text}], ChatSettings.of(**settings))


def test_streamed_reply_arrives_in_pieces_with_all_the_facts(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text="Hello there, streaming world.", ttft=0.15, delay=0.05))  # apart: not read as one
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    with stream:
        pieces = list(stream)
    result = stream.result
    assert len(pieces) > 1 and "".join(pieces) == result.text == "Hello there, streaming world."
    assert result.finish_reason == "stop"
    assert result.usage is not None and result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.cost_usd is not None and result.cost_usd > 0 and result.credits_used
    assert result.inference_id
    [request] = fake_api.chat_requests()
    assert request.headers["X-Client-Request-Id"] == result.client_request_id
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert 0.15 <= result.time_to_first_token <= result.duration


def test_non_streaming_call_gives_the_same_result_shape(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text="One piece."))
    result = ask(client, stream=False)
    assert result.text == "One piece." and result.finish_reason == "stop"
    assert result.usage and result.usage.completion_tokens > 0
    assert result.cost_usd and result.credits_used and result.inference_id
    [request] = fake_api.chat_requests()
    assert "stream" not in request.body


def test_body_holds_only_schema_keys_and_skips_defaults(client: ChatClient, fake_api: FakeAPI) -> None:
    ask(client, temperature=0.7, top_p=0.9, frequency_penalty=0.0, presence_penalty=0.5, seed=42, max_tokens=77)
    body = fake_api.chat_requests()[0].body
    assert set(body) <= ALLOWED_KEYS
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["seed"] == 42 and body["max_tokens"] == 77
    assert body["presence_penalty"] == 0.5 and "frequency_penalty" not in body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_every_request_gets_its_own_client_request_id(client: ChatClient, fake_api: FakeAPI) -> None:
    ask(client)
    ask(client)
    ids = [r.headers["X-Client-Request-Id"] for r in fake_api.chat_requests()]
    assert len(set(ids)) == 2
    assert all(1 <= len(i) <= 128 and i.replace("-", "").isalnum() for i in ids)


RAW_STREAMS = {
    "crlf-comments-no-space-no-done": (
        ": keep-alive\r\n\r\n"
        'data:{"id":"1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\r\n\r\n'
        'data:{"id":"1","choices":[{"index":0,"delta":{"content":"Grüße "}}]}\r\n\r\n'
        ": another\r\n\r\n"
        'data: {"id":"1","choices":[{"index":0,"delta":{"content":"世界 🎉"}}]}\r\n\r\n'
        'data: {"id":"1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\r\n\r\n'
        'data: {"id":"1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8},'
        '"meta":{"usage":{"credits_used":16,"usd_spent":0.000008}}}\r\n\r\n'
    ),
    "done-and-lf": (
        'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
        'data: {"choices":[{"delta":{"content":"Grüße "}}]}\n\n'
        'data: {"choices":[{"delta":{"content":"世界 🎉"},"finish_reason":"length"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8},'
        '"meta":{"usage":{"credits_used":16,"usd_spent":0.000008}}}\n\n'
        "data: [DONE]\n\n"
    ),
}


@pytest.mark.parametrize("name", sorted(RAW_STREAMS))
@pytest.mark.parametrize("cut", [None, 1, 3])
def test_stream_quirks_parse_to_the_same_result(
    client: ChatClient, fake_api: FakeAPI, name: str, cut: int | None
) -> None:
    fake_api.script(Reply(raw_stream=RAW_STREAMS[name].encode(), cut=cut))
    result = ask(client)
    assert result.text == "Grüße 世界 🎉"
    assert result.finish_reason == "length"
    assert (result.usage.total_tokens, result.cost_usd, result.credits_used) == (8, 0.000008, 16)


def test_error_object_inside_the_stream_keeps_the_partial_text(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text="one two three four", stream_error={"message": "Model overloaded", "status": 503}))
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    with pytest.raises(errors.UpstreamError) as caught, stream:
        list(stream)
    assert "Model overloaded" in caught.value.user_message and "kept" in caught.value.user_message
    assert stream.result.text == "one two three four"


def test_an_error_object_in_the_same_read_as_text_keeps_that_text(client: ChatClient, fake_api: FakeAPI) -> None:
    """What one read brings is taken together: text before an error in it is kept, not dropped with the read."""
    error = _sse_bytes({"error": {"message": "Model overloaded", "status": 503}})
    fake_api.script(Reply(raw_stream=event("one") + event(" two") + error))
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    with pytest.raises(errors.UpstreamError) as caught, stream:
        list(stream)
    assert "Model overloaded" in caught.value.user_message and "kept" in caught.value.user_message
    assert stream.result.text == "one two"


STATUS_CASES = [
    (400, errors.BadRequest, "rejected the request", 1),
    (401, errors.KeyRejected, "key was rejected", 1),
    (403, errors.OutOfCredits, "run out of credits", 1),
    (429, errors.RateLimited, "rate-limiting", 3),
    (500, errors.ServerError, "internal error", 3),
    (502, errors.ServerError, "gateway", 3),
    (503, errors.ServerError, "unavailable", 3),
    (504, errors.ServerError, "too long", 1),  # a generation timeout would only repeat: see transport.py
]


@pytest.mark.parametrize(("status", "kind", "words", "attempts"), STATUS_CASES)
def test_each_documented_status_becomes_its_error_and_only_transient_ones_retry(
    client: ChatClient, fake_api: FakeAPI, status: int, kind: type, words: str, attempts: int
) -> None:
    fake_api.script(*[Reply(status=status, headers={"Retry-After": "0"}) for _ in range(3)])
    with pytest.raises(kind) as caught:
        ask(client)
    assert words in caught.value.user_message and caught.value.status == status
    assert caught.value.request_id
    assert len(fake_api.chat_requests()) == attempts


def test_unknown_model_gets_a_message_naming_minimax_models(client: ChatClient, fake_api: FakeAPI) -> None:
    with pytest.raises(errors.ModelUnavailable) as caught:
        ask(client, model="minimax/does-not-exist")
    assert "minimax/does-not-exist" in caught.value.user_message
    assert "MiniMax-Text-01" in caught.value.user_message
    assert len(fake_api.chat_requests()) == 1


def test_deprecated_model_is_explained() -> None:
    with (
        FakeAPI(deprecated_models=frozenset({"abab6.5s-chat"})) as api,
        make_client(api) as chat_client,
        pytest.raises(errors.ModelUnavailable) as caught,
    ):
        ask(chat_client, model="abab6.5s-chat")
    assert "retired" in caught.value.user_message and "minimax/m1" in caught.value.user_message


def test_retry_after_is_honoured_then_the_reply_streams(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="after the wait"))
    started = time.monotonic()
    assert ask(client).text == "after the wait"
    assert time.monotonic() - started >= 1.0
    assert len(fake_api.chat_requests()) == 2


def test_backoff_waits_longer_each_time(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(status=503), Reply(status=503), Reply(text="third time"))
    started = time.monotonic()
    assert ask(client).text == "third time"
    assert time.monotonic() - started >= 0.75 * (0.5 + 1.0)


def test_a_retry_after_beyond_the_budget_fails_at_once_and_says_when(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(status=429, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(errors.RateLimited) as caught:
        ask(client)
    assert time.monotonic() - started < 2 and "Wait 30 s" in caught.value.user_message
    assert len(fake_api.chat_requests()) == 1


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (Reply(text="a b c d e f", drop_after=3), errors.StreamBroken, "cut"),
        (Reply(text="a b c d e f", reset_after=3), errors.StreamBroken, "cut"),
        (Reply(text="a b c d e f", stall_after=3), errors.TimedOut, "sent nothing for 1 s"),
    ],
    ids=["drop", "reset", "stall"],
)
def test_mid_stream_failures_keep_the_text_and_are_not_retried(
    fake_api: FakeAPI, reply: Reply, kind: type, words: str
) -> None:
    fake_api.script(reply)
    with make_client(fake_api, read_timeout=SHORT_READ) as client:
        stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
        with pytest.raises(kind) as caught, stream:
            list(stream)
    assert words in caught.value.user_message and "kept" in caught.value.user_message
    assert stream.result.text.startswith("a b")
    assert len(fake_api.chat_requests()) == 1


def test_stall_before_any_text_times_out(fake_api: FakeAPI) -> None:
    fake_api.script(Reply(stall_after=0))
    with make_client(fake_api, read_timeout=SHORT_READ) as client, pytest.raises(errors.TimedOut) as caught:
        ask(client)
    assert "kept" not in caught.value.user_message


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (
            Reply(status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"),
            errors.ServerError,
            "web page",
        ),
        (Reply(status=500, body=""), errors.ServerError, "internal error"),
        (
            Reply(status=400, body="{ message: 'Body validation error!', statusCode: '400' }"),
            errors.BadRequest,
            "not JSON",
        ),
        (
            Reply(status=200, body="<html>Welcome to nginx</html>", content_type="text/html"),
            errors.BadResponse,
            "web page",
        ),
        (Reply(status=200, body="", content_type="application/json"), errors.BadResponse, "not JSON"),
        (Reply(raw_stream=b"data: {not json}\n\n"), errors.BadResponse, "garbled"),
    ],
    ids=["html-502", "empty-500", "vendor-invalid-json", "html-200", "empty-200", "garbled-stream"],
)
def test_malformed_answers_are_explained(
    client: ChatClient, fake_api: FakeAPI, reply: Reply, kind: type, words: str
) -> None:
    fake_api.script(*[reply] * 3)
    with pytest.raises(kind) as caught:
        ask(client)
    assert words in caught.value.user_message


def test_vendor_400_message_is_shown(client: ChatClient, fake_api: FakeAPI) -> None:
    vendor = "Unsupported value: 'messages[0].role' does not support 'system' with this model."
    fake_api.script(Reply(status=400, body={"message": vendor, "statusCode": "400", "requestId": "req-9"}))
    with pytest.raises(errors.BadRequest) as caught:
        ask(client)
    assert vendor in caught.value.user_message and caught.value.request_id == "req-9"


def test_refused_connection_is_retried_then_explained(unused_port: int) -> None:
    settings = Settings(api_key=KEY, base_url=f"http://127.0.0.1:{unused_port}/v1", retry_budget=0.5)
    with ChatClient(settings) as chat_client, pytest.raises(errors.ConnectionFailed) as caught:
        ask(chat_client)
    assert "refused" in caught.value.user_message


def test_unknown_host_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:

    def no_such_host(host: str, *args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    settings = Settings(api_key=KEY, base_url="https://api.example.invalid/v1", retry_budget=0.1)
    with ChatClient(settings) as chat_client, pytest.raises(errors.ConnectionFailed) as caught:
        ask(chat_client)
    assert "api.example.invalid" in caught.value.user_message


def test_connect_timeout_is_explained(unaccepting_port: int) -> None:
    settings = Settings(
        api_key=KEY, base_url=f"http://127.0.0.1:{unaccepting_port}/v1", connect_timeout=0.3, retry_budget=0.1
    )
    with ChatClient(settings) as chat_client, pytest.raises(errors.TimedOut) as caught:
        ask(chat_client)
    assert "within 0.3 s" in caught.value.user_message


def test_missing_key_says_how_to_set_one(fake_api: FakeAPI) -> None:
    with make_client(fake_api, api_key=None) as chat_client, pytest.raises(errors.MissingKey) as caught:
        ask(chat_client)
    assert "AIMLAPI_KEY" in caught.value.user_message
    assert fake_api.chat_requests() == []


def test_a_visitors_key_is_used_for_that_call_only(client: ChatClient, fake_api: FakeAPI) -> None:
    client.complete([{"role": "user", "content": "Hi"}], ChatSettings(), user_key="visitor-key")
    ask(client)
    auth = [r.headers["Authorization"] for r in fake_api.chat_requests()]
    assert auth == ["Bearer visitor-key", f"Bearer {KEY}"]


def test_model_specific_ranges_are_checked_before_sending(client: ChatClient, fake_api: FakeAPI) -> None:
    with pytest.raises(errors.InvalidSettings, match="between 0 and 1"):
        ask(client, model="MiniMax-Text-01", temperature=1.5)
    with pytest.raises(errors.InvalidSettings, match="(?i)frequency penalty"):
        ask(client, model="MiniMax-Text-01", frequency_penalty=0.5)
    assert fake_api.chat_requests() == []
    assert ask(client, model="MiniMax-Text-01", temperature=0.9).text


def test_long_conversation_is_trimmed_to_the_context_window(client: ChatClient, fake_api: FakeAPI) -> None:
    turn = "word " * 30_000  # about 50,000 tokens by the cautious estimate
    messages = [{"role": "system", "content": "sys"}]
    for _ in range(10):
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "ok"}]
    messages.append({"role": "user", "content": "newest question"})
    stream = client.stream_chat(messages, ChatSettings.of(max_tokens=1000))
    assert stream.dropped_messages > 0
    with stream:
        list(stream)
    sent = fake_api.chat_requests()[0].body["messages"]
    assert sent[0]["content"] == "sys" and sent[-1]["content"] == "newest question"
    assert len(sent) == len(messages) - stream.dropped_messages and sent[1]["role"] == "user"
    assert stream.result.dropped_messages == stream.dropped_messages


def test_closing_the_stream_disconnects_upstream_at_once(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(text=" ".join(f"w{i}" for i in range(200)), delay=0.05))
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    pieces = iter(stream)
    next(pieces), next(pieces)
    stream.close()
    request = fake_api.chat_requests()[0]
    assert request.client_disconnected.wait(5.0)
    assert stream.result is not None and stream.result.finish_reason is None


@pytest.mark.parametrize("shape", SHAPES)
def test_a_reader_that_defers_its_reads_takes_many_tokens_in_one_read_of_the_socket_and_one_piece(
    fake_api: FakeAPI, shape: str, socket_reads: list[int | None]
) -> None:
    """Found by measuring each thread's CPU: a reply's thread read every token as it came, about 100 µs of system
    calls each, though the page is updated a few times a second at most. A reader that has no use for text before
    its next update defers its reads: the socket keeps what comes, and one read then takes it all. What one read
    brought is then handed on as one piece, not a token at a time (`http.client` gives out one HTTP chunk a call),
    so that it is all shown at the next update and the reader's work is per read."""
    words = [f"w{i}" for i in range(40)]
    fake_api.script(Reply(text=" ".join(words), delay=0.02, shape=shape))  # 0.8 s of tokens
    with make_client(fake_api) as chat_client:
        stream = chat_client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
        pieces = []
        with stream:
            for piece in stream:
                pieces.append(piece)
                stream.defer_reads(time.monotonic() + 0.2)
    assert stream.text == " ".join(words) and stream.result is not None and stream.result.finish_reason == "stop"
    # about 10: four waits, each with a read or two after it (one may find what came while the last was taken),
    # and the head; 44 to 48 when every token is read as it comes
    assert len(socket_reads) < len(words) / 2, f"{len(socket_reads)} reads of the socket for {len(words)} tokens"
    if shape != "gzip":  # a compressed answer is handed on a chunk at a time: its decoder may need more than is here
        assert len(pieces) < len(words) / 2, f"{len(pieces)} pieces for {len(words)} tokens"  # 40: one a chunk


@pytest.mark.parametrize("shape", [shape for shape in SHAPES if shape != "http1.0"])  # which has no chunks
def test_what_came_before_a_chunk_whose_end_never_comes_is_kept(fake_api: FakeAPI, shape: str) -> None:
    """The tokens that one read brought are handed on together; the last of them is followed by a chunk whose
    size line came but not its data, and waiting for the data times out: those tokens are shown, then the error."""
    fake_api.script(Reply(text="a b c d e f", stall_after=3, stall_in_chunk=True, shape=shape))
    with make_client(fake_api, read_timeout=SHORT_READ) as chat_client:
        stream = chat_client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
        with pytest.raises(errors.TimedOut) as caught, stream:
            list(stream)
    assert stream.text == "a b c" and "kept" in caught.value.user_message


def test_a_stream_faster_than_the_reads_is_read_as_fast_as_it_comes(
    client: ChatClient, fake_api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that fills `http.client`'s buffer (8 KiB) leaves the rest in the socket: the next read follows at once,
    however far off the reader's next update is, or a fast model would be shown slower than it writes. A read waits
    only when it has caught up with the writer."""
    monkeypatch.setattr(transport, "MAX_READ_PAUSE", 1.0)  # a wait that no slow machine explains away
    chunks = [f"{i:02d}" + "x" * 4000 for i in range(40)]  # 160 KB as fast as the stand-in writes: 20 buffers
    fake_api.script(Reply(chunks=chunks))
    started = time.monotonic()
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    with stream:
        for _ in stream:
            stream.defer_reads(time.monotonic() + 1.0)
    took = time.monotonic() - started  # a wait each time the reader caught up; 20 s and more if it waited per buffer
    assert stream.text == "".join(chunks)
    assert took < 10, f"{took:.1f} s: reads waited though the socket held more"


def event(text: str) -> bytes:
    return _sse_bytes({"choices": [{"index": 0, "delta": {"content": text}}]})


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def test_a_stream_framed_by_a_length_and_cut_short_is_an_error_that_keeps_its_text(
    client: ChatClient, fake_api: FakeAPI
) -> None:
    """A gateway that sends a whole stream with Content-Length, and the connection drops before its end: a cut
    (the reply is not complete), not a reply that ended."""
    body = event("Hello") + event(" world") + event(" and more") + b"data: [DONE]\n\n"
    head = STREAM_HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
    fake_api.script(Reply(raw_answer=[(0, head + event("Hello") + event(" world"))]))
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    with pytest.raises(errors.StreamBroken) as caught, stream:
        list(stream)
    assert stream.text == "Hello world" and "kept" in caught.value.user_message


def test_a_whole_answer_read_to_its_length_leaves_its_connection_ready_for_the_next(
    client: ChatClient, fake_api: FakeAPI
) -> None:
    """The answer is done with before its connection is handed on, even while its failure (whose traceback holds
    the reader) is still kept: the next call on that connection is sent and answered."""
    fake_api.script(Reply(body="not json at all", content_type="application/json"), Reply())
    with pytest.raises(errors.BadResponse) as caught:
        ask(client)
    assert ask(client).text == "Hello from the stand-in." and caught.value  # the failure is still referenced
    assert fake_api.connections == 2  # the catalogue's, and one for both calls


@pytest.mark.parametrize(
    "later",
    [
        pytest.param(chunked(event(" later"), b"data: [DONE]\n\n") + b"0\r\n\r\n", id="next chunk"),
        pytest.param(b"X-Trailer: 1\r\n\r\n", id="trailer"),
    ],
)
def test_text_that_is_here_is_handed_on_though_the_end_of_a_chunk_is_not(
    client: ChatClient, fake_api: FakeAPI, later: bytes
) -> None:
    """Text is handed on without waiting for what follows it: a chunk whose data filled `http.client`'s buffer
    (8 KiB) exactly, its CRLF still in the socket; or the last chunk's size line, its trailers not yet sent."""
    first = event("First") + event("Second" + " " * (8192 - len(event("First")) - len(event("Second"))))
    assert len(first) == 8192
    now = chunked(first) if b"X-Trailer" not in later else chunked(event("First"), b"data: [DONE]\n\n") + b"0\r\n"
    fake_api.script(Reply(raw_answer=[(0, STREAM_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + now), (30, later)]))
    with make_client(fake_api, read_timeout=60.0) as chat_client:
        stream = chat_client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first_piece = pool.submit(next, stream)
            assert "First".startswith(first_piece.result(timeout=10)[:5])  # the rest comes 30 s later
            stream.close()


class WouldWait(Exception):
    """The answer's reader asked the network for more: a real socket would have waited."""


class HeldBytes(io.RawIOBase):
    """A socket that has sent `data` and nothing more yet."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.data:
            raise WouldWait
        size = min(len(buffer), len(self.data))
        buffer[:size], self.data = self.data[:size], self.data[size:]
        return size


class HeldSocket:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(HeldBytes(self.data))


def reads_without_waiting_when_said_to(taken: int, held: bytes) -> None:
    """After `taken` bytes of a 5-byte chunk's data, with `held` in the buffer and nothing more from the socket:
    when `_more_here` says more is here, the next `read1` hands some out without asking the socket."""
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = http.client.HTTPResponse(HeldSocket(head + b"5\r\nabcde" + held))  # type: ignore[arg-type]
    answer.begin()
    assert answer.read1(taken)  # some or all of the first chunk's data: the state `_more_here` starts from
    try:
        buffered = answer.fp.peek(1)
    except WouldWait:
        buffered = b""
    if transport._more_here(answer, buffered):
        assert answer.read1(65_536)  # raises WouldWait if it needed the network


# What may follow a chunk's data in the buffer: some of its CRLF, of the next size line (or a bad one), of the data
HELD_PARTS = (
    [b"", b"\r", b"\r\n", b"x"],
    [b"", b"0", b"5", b"1a", b"zz", b"-1"],
    [b"", b";x=1"],
    [b"", b"\r", b"\r\n", b"\n"],
    [b"", b"h", b"hello"],
)


def test_more_is_said_to_be_here_only_when_reading_it_waits_for_nothing() -> None:
    for taken in (2, 5):  # within the chunk's data, and at its end
        for parts in itertools.product(*HELD_PARTS):
            reads_without_waiting_when_said_to(taken, b"".join(parts))


@given(st.integers(1, 6), st.binary(max_size=16))
def test_more_is_said_to_be_here_only_when_reading_it_waits_for_nothing_whatever_the_bytes(
    taken: int, held: bytes
) -> None:
    reads_without_waiting_when_said_to(taken, held)


def test_what_is_already_here_is_handed_on_a_bounded_amount_at_a_time(
    client: ChatClient, fake_api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However much of the answer waits in the socket, the reader takes it `READ_SIZE` at a time (and at most one
    HTTP chunk more), so a server that streams faster than the reader works costs it bounded memory."""
    monkeypatch.setattr(transport, "READ_SIZE", 8192)
    monkeypatch.setattr(transport, "MAX_READ_PAUSE", 1.0)  # time for the whole answer to arrive before a read
    fake_api.script(Reply(chunks=["x" * 100] * 2000))  # 200 KB of text, as fast as the stand-in writes it
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    stream.defer_reads(time.monotonic() + 1.0)
    with stream:
        pieces = list(stream)
    assert "".join(pieces) == "x" * 200_000
    assert max(map(len, pieces)) < 2 * 8192, f"a piece of {max(map(len, pieces))} characters"


def test_a_stop_ends_a_deferred_read_at_once(
    client: ChatClient, fake_api: FakeAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "MAX_READ_PAUSE", 60.0)  # so that only the Stop can end the wait in time
    fake_api.script(Reply(text=" ".join(f"w{i}" for i in range(200)), delay=0.01))
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    reader_thread: list[int] = []

    def read() -> None:
        reader_thread.append(threading.get_ident())
        for _ in stream:
            stream.defer_reads(time.monotonic() + 60)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        reader = pool.submit(read)
        deadline = time.monotonic() + 10
        while not paused_in_read(reader_thread) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the reader's stack: nothing to wait on
        assert paused_in_read(reader_thread), "the reader never deferred a read"
        stream.close()
        reader.result(timeout=10)  # ended by the Stop: the wait had 60 s to run
    assert fake_api.chat_requests()[0].client_disconnected.wait(5.0)


def paused_in_read(thread: list[int]) -> bool:
    """Whether the thread in `thread` waits before a read of the socket (`Call._pace_socket_reads`)."""
    frame = sys._current_frames().get(thread[0]) if thread else None
    while frame is not None and frame.f_code.co_name != "paced":
        frame = frame.f_back
    return frame is not None


def test_closing_while_the_answer_has_not_begun_disconnects_at_once_and_ends_quietly(fake_api: FakeAPI) -> None:
    """A gateway that sends no headers until the model speaks: the reader is blocked inside `post`."""
    fake_api.script(Reply(headers_after=30), Reply())
    with make_client(fake_api, read_timeout=60.0) as chat_client:
        stream = chat_client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reader = pool.submit(list, stream)
            fake_api.wait_for_message("Hi")
            stream.close()
            assert fake_api.chat_requests()[0].client_disconnected.wait(5.0), "upstream still open"
            assert reader.result(timeout=5) == []  # a stop, not an error
        assert ask(chat_client).text == "Hello from the stand-in."  # the pool is fine afterwards


def test_a_stream_closed_before_it_starts_sends_nothing(client: ChatClient, fake_api: FakeAPI) -> None:
    stream = client.stream_chat([{"role": "user", "content": "Hi"}], ChatSettings())
    stream.close()
    assert list(stream) == [] and fake_api.chat_requests() == []
    assert stream.result is not None and not stream.result.billable  # recorded: nothing to bill


def test_sequential_calls_reuse_one_connection(client: ChatClient, fake_api: FakeAPI) -> None:
    before = fake_api.connections  # the catalogue's, through the Session
    for _ in range(5):
        ask(client)
    assert fake_api.connections - before == 1


def test_many_simultaneous_chats_share_the_session(fake_api: FakeAPI, caplog: pytest.LogCaptureFixture) -> None:
    fake_api.default = Reply(text="parallel reply here", delay=0.02)
    results: list[str] = []
    with make_client(fake_api, concurrency=24) as chat_client:
        threads = [threading.Thread(target=lambda: results.append(ask(chat_client).text)) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == ["parallel reply here"] * 24
        # Kept are those whose answer's end came within the drain's grace (on a loaded machine not quite all).
        kept, before = len(chat_client.connections._idle), fake_api.connections
        assert kept >= 12
        threads = [threading.Thread(target=lambda: results.append(ask(chat_client).text)) for _ in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert fake_api.connections - before <= 24 - kept  # the second wave reuses every pooled connection
    assert "Connection pool is full" not in caplog.text


def test_the_key_never_leaks_into_errors_or_logs(fake_api: FakeAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    echo = f'{{"message": "bad header Authorization: Bearer {KEY}", "key": "{KEY}"}}'
    fake_api.script(
        Reply(status=400, body=echo), Reply(status=502, body=f"<html>{KEY}</html>", content_type="text/html")
    )
    caught = []
    with make_client(fake_api, max_retries=0) as chat_client:
        for _ in range(2):
            with pytest.raises(errors.ChatError) as failure:
                ask(chat_client)
            caught.append(failure.value)
    for error in caught:
        assert KEY not in f"{error} {error.user_message} {error.detail} {error!r}"
    assert KEY not in caplog.text


# Issue 16, item 2: redact first, then cut. The key is put at every offset around each cut of an answer.
CANARY = "Qz8Kv3Wm7Jx2Rt9Lp4Hd"
LEAKS = [
    ("status detail", lambda pad: Reply(status=400, body=pad + CANARY + " tail", content_type="text/plain")),
    ("vendor message", lambda pad: Reply(status=400, body={"message": pad + CANARY + " tail"})),
    ("stream error message", lambda pad: Reply(raw_stream=_sse_bytes({"error": {"message": pad + CANARY}}))),
    ("stream error detail", lambda pad: Reply(raw_stream=_sse_bytes({"error": {"code": 1, "echo": pad + CANARY}}))),
    ("garbled stream", lambda pad: Reply(raw_stream=b"data: {" + (pad + CANARY).encode() + b"\n\n")),
    ("html answer", lambda pad: Reply(status=200, body="<html>" + pad + CANARY, content_type="text/html")),
]


def fragments(secret: str, size: int = 5) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


@pytest.mark.parametrize(("where", "make"), LEAKS, ids=[name for name, _ in LEAKS])
def test_no_part_of_the_key_survives_a_cut_at_any_offset(
    fake_api: FakeAPI, caplog: pytest.LogCaptureFixture, where: str, make: Callable[[str], Reply]
) -> None:
    caplog.set_level("DEBUG")
    pads = range(200, 320)  # the key straddles, touches and clears every 300-character cut (prefixes vary)
    fake_api.script(*(make("x" * n) for n in pads))
    seen = []
    with make_client(fake_api, api_key=CANARY, max_retries=0) as chat_client:
        for _ in pads:
            with pytest.raises(errors.ChatError) as caught:
                ask(chat_client)
            error = caught.value
            seen.append(f"{error} {error.user_message} {error.detail} {error!r}")
    everything = "\n".join(seen) + caplog.text
    assert CANARY not in everything and not [f for f in fragments(CANARY) if f in everything]
    assert "[redacted]" in everything


# Item 3: a compressed body that is not chunked is decoded, not read as raw gzip.
def test_a_gzip_stream_with_content_length_or_a_closed_connection_is_decoded(
    client: ChatClient, fake_api: FakeAPI
) -> None:
    stream = gzip.compress(RAW_STREAMS["done-and-lf"].encode())
    headers = {"Content-Encoding": "gzip"}
    fake_api.script(
        Reply(body=stream, content_type="text/event-stream", headers=headers),
        Reply(body=stream, content_type="text/event-stream", headers=headers, shape="http1.0"),
    )
    for _ in range(2):
        result = ask(client)
        assert result.text == "Grüße 世界 🎉" and result.usage.total_tokens == 8
    assert {r.headers["Accept-Encoding"] for r in fake_api.chat_requests()} == {"identity"}  # asked not to, though


# Item 4: after [DONE] the reply is complete, whatever the server does with the connection.
def test_the_reply_ends_at_done_even_if_the_body_stays_open(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(raw_stream=RAW_STREAMS["done-and-lf"].encode(), stall_after=0))
    started = time.monotonic()
    result = ask(client)
    assert time.monotonic() - started < PATIENT_READ / 2  # not ended by the read timeout
    assert result.text == "Grüße 世界 🎉" and result.finish_reason == "length"
    assert fake_api.chat_requests()[0].client_disconnected.wait(5.0)


# Item 7: odd fields in a chunk are ignored; only a real error object is an error.
def test_null_error_odd_usage_and_nan_cost_do_not_spoil_a_reply(client: ChatClient, fake_api: FakeAPI) -> None:
    chunks = [
        {"choices": [{"delta": {"content": "Fine"}}], "error": None},
        {"choices": [{"delta": {"content": " reply"}, "finish_reason": "stop"}], "error": {}},
        {
            "choices": [],
            "usage": {"prompt_tokens": "12.5", "completion_tokens": {"n": 1}, "total_tokens": 3},
            "meta": {"usage": {"usd_spent": float("nan"), "credits_used": float("inf")}},
        },
    ]
    fake_api.script(Reply(raw_stream=b"".join(map(_sse_bytes, chunks)) + b"data: [DONE]\n\n"))
    result = ask(client)
    assert result.text == "Fine reply" and result.finish_reason == "stop"
    assert result.usage is None and result.cost_usd is None and result.credits_used is None


def test_an_error_status_in_odd_digits_is_ignored(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(raw_stream=_sse_bytes({"error": {"message": "Overloaded", "status": "5²3"}})))
    with pytest.raises(errors.UpstreamError) as caught:
        ask(client)
    assert "Overloaded" in caught.value.user_message and caught.value.status is None


def test_a_line_too_long_is_a_clear_error_without_the_key(fake_api: FakeAPI, caplog: pytest.LogCaptureFixture) -> None:
    pads = range(270, 300, 2)  # the excerpt is cut at 300 characters, after "data: "
    fake_api.script(*(Reply(raw_stream=b"data: " + b"x" * pad + CANARY.encode() + b"y" * 2**21) for pad in pads))
    with make_client(fake_api, api_key=CANARY, max_retries=0) as chat_client:
        for _ in pads:
            with pytest.raises(errors.BadResponse) as caught:
                ask(chat_client)
            assert "longer than 2 MiB" in caught.value.user_message
            assert not [f for f in fragments(CANARY) if f in f"{caught.value} {caplog.text}"]


def test_a_retry_after_of_zero_retries_at_once(client: ChatClient, fake_api: FakeAPI) -> None:
    fake_api.script(Reply(status=429, headers={"Retry-After": "0"}), Reply(status=503, headers={"Retry-After": "0"}))
    started = time.monotonic()
    assert ask(client).text == "Hello from the stand-in."
    # our own back-off before two retries would take at least 1.1 s (INITIAL_RETRY_DELAY)
    assert time.monotonic() - started < 1.0 and len(fake_api.chat_requests()) == 3


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), ("0", 0.0), ("soon", None), ("", None), (None, None)])
def test_retry_after_reads_seconds_and_ignores_nonsense(value: str | None, seconds: float | None) -> None:
    assert retry_after(value) == seconds


def test_retry_after_reads_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (retry_after(later) or 0) <= 30
