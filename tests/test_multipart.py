"""web.multipart counts an upload's parts as the body streams past (review 8, F5): the same count however the body
is cut into pieces, one per file of a form as browsers send it, and never fewer than Gradio's parser begins."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from web.multipart import MAX_BOUNDARY, PartCounter, boundary_of

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
# Pieces of forged bodies around a one-letter boundary: delimiters, near misses, line ends and a part's headers.
PIECES = [b"--b", b"-", b"b", b"\r\n", b"\r", b"\n", b"x", b"--", b'Content-Disposition: form-data; name="f"\r\n\r\n']


def form(files: list[bytes], boundary: bytes = BOUNDARY) -> bytes:
    """A multipart form of `files` as a browser sends it."""
    parts = [
        b'--%s\r\nContent-Disposition: form-data; name="files"; filename="%d.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n%s\r\n" % (boundary, number, content)
        for number, content in enumerate(files)
    ]
    return b"".join(parts) + b"--%s--\r\n" % boundary


def cut(body: bytes, at: list[int]) -> list[bytes]:
    """`body` in pieces, cut at the offsets `at` (any order, any repeats)."""
    edges = sorted({0, len(body), *(offset % (len(body) + 1) for offset in at)})
    return [body[start:end] for start, end in zip(edges, edges[1:], strict=False)]


def counted(boundary: bytes, pieces: list[bytes]) -> int:
    counter = PartCounter(boundary)
    for piece in pieces:
        counter.feed(piece)
    return counter.parts


def begun_by_gradios_parser(boundary: bytes, body: bytes) -> int:
    """Parts python-multipart (Gradio's parser) begins in `body` before it ends or gives up."""
    begun = 0

    def on_part_begin() -> None:
        nonlocal begun
        begun += 1

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin})
    with contextlib.suppress(MultipartParseError):  # a forged body: what it began before that is what counts
        parser.write(body)
    return begun


@given(st.lists(st.binary(max_size=200), max_size=40), st.lists(st.integers(min_value=0), max_size=20))
def test_a_forms_parts_are_its_files_however_it_is_cut(files: list[bytes], at: list[int]) -> None:
    body = form(files)
    assert counted(BOUNDARY, cut(body, at)) == len(files) == begun_by_gradios_parser(BOUNDARY, body)


@given(
    st.lists(st.sampled_from(PIECES), max_size=60),
    st.sampled_from([b"b", b"-", b"--", b"b-"]),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_body_counts_the_same_in_any_pieces_and_never_below_gradios_parser(
    pieces: list[bytes], boundary: bytes, at: list[int]
) -> None:
    body = b"".join(pieces)
    whole = counted(boundary, [body])
    assert counted(boundary, cut(body, at)) == whole
    assert counted(boundary, [body[i : i + 1] for i in range(len(body))]) == whole  # a byte at a time
    assert begun_by_gradios_parser(boundary, body) <= whole


def test_the_closing_delimiter_is_no_part_even_when_cut_before_its_dashes() -> None:
    body = form([b"a", b"b"])
    close = body.rindex(b"--" + BOUNDARY + b"--")
    for end in range(close, len(body) + 1):  # the last piece ends anywhere in or after the closing delimiter
        assert counted(BOUNDARY, [body[:end], body[end:]]) == 2


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", b"abc"),
        ('multipart/form-data; boundary="a b"', b"a b"),
        ("multipart/form-data; charset=utf-8; boundary=x", b"x"),
        ("multipart/form-data", None),
        ("multipart/form-data; boundary=", None),
        ('multipart/form-data; boundary=""', None),
        (f"multipart/form-data; boundary={'b' * (MAX_BOUNDARY + 1)}", None),
        ("multipart/form-data; boundary=\u0101", None),  # beyond latin-1: no HTTP header holds it
    ],
)
def test_the_boundary_is_read_as_gradio_reads_it(content_type: str, boundary: bytes | None) -> None:
    assert boundary_of(content_type) == boundary
