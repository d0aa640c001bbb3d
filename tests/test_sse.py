"""sse: the byte-level decoder, table-driven, including a recorded stream cut at every byte."""

from __future__ import annotations

import pytest

from chat_backend.sse import LineSplitter, ServerSentEvent, SSEDecoder

RECORDED = (
    ": keep-alive\r\n\r\n"
    'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\r\n\r\n'
    'data:{"choices":[{"delta":{"content":"Grüße, 世界 🎉"}}]}\n\n'
    'data: {"choices":[],"usage":{"total_tokens":3}}\r\r'
    "data: [DONE]\n\n"
).encode()
EXPECTED = [
    '{"choices":[{"delta":{"role":"assistant","content":""}}]}',
    '{"choices":[{"delta":{"content":"Grüße, 世界 🎉"}}]}',
    '{"choices":[],"usage":{"total_tokens":3}}',
    "[DONE]",
]


def events(*chunks: bytes) -> list[ServerSentEvent]:
    return list(SSEDecoder().iter_bytes(chunks))


def test_recorded_stream_cut_at_every_byte_gives_the_same_events() -> None:
    for cut in range(len(RECORDED) + 1):
        assert [e.data for e in events(RECORDED[:cut], RECORDED[cut:])] == EXPECTED, cut


def test_recorded_stream_fed_one_byte_at_a_time() -> None:
    assert [e.data for e in events(*(RECORDED[i : i + 1] for i in range(len(RECORDED))))] == EXPECTED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"data: x\n\n", [ServerSentEvent("x")]),
        (b"data:x\n\n", [ServerSentEvent("x")]),
        (b"data:  two spaces\n\n", [ServerSentEvent(" two spaces")]),
        (b"data: a\ndata: b\n\n", [ServerSentEvent("a\nb")]),
        (b"event: error\ndata: {}\n\n", [ServerSentEvent("{}", event="error")]),
        (b"id: 7\ndata: x\n\ndata: y\n\n", [ServerSentEvent("x", id="7"), ServerSentEvent("y", id="7")]),
        (b"retry: 10\ndata: x\n\n", [ServerSentEvent("x", retry=10)]),
        (b"retry: soon\ndata: x\n\n", [ServerSentEvent("x")]),
        (b"id: a\0b\ndata: x\n\n", [ServerSentEvent("x")]),
        (b": comment only\n\n\n\n", []),
        (b"unknown: field\ndata: x\n\n", [ServerSentEvent("x")]),
        (b"data: unterminated", [ServerSentEvent("unterminated")]),
        (b"data: crlf\r\n\r\n", [ServerSentEvent("crlf")]),
        (b"data: cr\r\rdata: next\r\r", [ServerSentEvent("cr"), ServerSentEvent("next")]),
        (b"data\n\n", [ServerSentEvent("")]),
    ],
)
def test_whatwg_field_rules(raw: bytes, expected: list[ServerSentEvent]) -> None:
    assert events(raw) == expected


def test_crlf_split_between_reads_is_one_line_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"\nb\r\n") == [b"b"]
    assert splitter.finish() == []


def test_multibyte_character_split_across_reads_survives() -> None:
    encoded = 'data: {"t":"€"}\n\n'.encode()
    split_at = encoded.index(b"\xe2") + 1  # inside the three-byte euro sign
    assert events(encoded[:split_at], encoded[split_at:])[0].json() == {"t": "€"}
