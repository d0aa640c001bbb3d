"""Shared pytest fixtures."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.fake_api import FakeAPI


@pytest.fixture
def fake_api() -> Iterator[FakeAPI]:
    """A started stand-in API; fails the test if a chat request broke the schema, unless
    the test set `fake_api.expect_schema_errors = True`."""
    api = FakeAPI().start()
    try:
        yield api
    finally:
        api.release()
        api.close()
    bad = [(r.path, r.schema_errors) for r in api.chat_requests() if r.schema_errors]
    if bad and not api.expect_schema_errors:
        pytest.fail(f"chat requests did not match the vendor schema: {bad}", pytrace=False)


@pytest.fixture
def unused_port() -> int:
    """A loopback port with nothing listening on it, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose listen queue is full, so a new connection attempt hangs until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for sock in fillers + [listener]:
            sock.close()
