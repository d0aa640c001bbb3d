"""The failed-login limit (issue 20, item 7) in-process: shared by replicas through Redis, in memory without it,
and not escaped by parallel guesses. The launched cluster's case is in tests/test_cluster_edge.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.asgi_driver import Answer, request
from tests.redis_server import RedisServer
from web.login import LoginThrottle

FORM = {"content-type": "application/x-www-form-urlencoded"}


class Gradio:
    """A stand-in for Gradio's /login: 200 for the right password, 400 otherwise; `held` keeps answers back."""

    def __init__(self) -> None:
        self.attempts = 0
        self.arrived = asyncio.Event()  # a password reached the check
        self.held = asyncio.Event()
        self.held.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = (await receive()).get("body", b"")
        self.attempts += 1
        self.arrived.set()
        await self.held.wait()
        status = 200 if body == b"password=right" else 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def throttle(storage_url: str | None = None, max_failures: int = 5) -> tuple[LoginThrottle, Gradio]:
    gradio = Gradio()
    return LoginThrottle(gradio, max_failures=max_failures, window=60, trusted_hops=0, storage_url=storage_url), gradio


async def attempt(app: LoginThrottle, password: str, client: str = "192.0.2.1") -> Answer:
    return await request(app, "/login", f"password={password}".encode(), FORM, client=client)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_replicas_share_the_failures_through_redis(redis_server: RedisServer) -> None:
    (one, _), (two, _) = throttle(redis_server.url), throttle(redis_server.url)

    async def scenario() -> list[int]:
        return [(await attempt(one if n % 2 else two, f"guess-{n}")).status for n in range(7)]

    assert asyncio.run(scenario()) == [400] * 5 + [429, 429]


def test_a_failure_is_counted_before_its_answer_leaves(redis_server: RedisServer) -> None:
    """Seen in CI through the balancer: the sixth guess, sent as soon as the fifth's answer arrived, went to the
    other replica and was let through. The fifth was counted only once its whole answer had been sent."""
    two, _ = throttle(redis_server.url)
    seen: list[int] = []

    async def answering(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 400, "headers": []})
        seen.append((await attempt(two, "at once")).status)  # the visitor has its answer and tries elsewhere
        await send({"type": "http.response.body", "body": b"{}"})

    one = LoginThrottle(answering, max_failures=5, window=60, trusted_hops=0, storage_url=redis_server.url)

    async def scenario() -> None:
        for n in range(4):
            await attempt(two, f"guess-{n}")
        await attempt(one, "the fifth")

    asyncio.run(scenario())
    assert seen == [429]


def test_successes_never_count_and_other_addresses_are_unaffected() -> None:
    app, _ = throttle()

    async def scenario() -> tuple[list[int], int, int, Answer]:
        mixed = [(await attempt(app, "right" if n % 2 else f"guess-{n}")).status for n in range(9)]
        other = (await attempt(app, "right", client="192.0.2.2")).status
        after = (await attempt(app, "guess-again")).status
        return mixed, other, after, await attempt(app, "right")

    mixed, other, after, refused = asyncio.run(scenario())
    assert mixed == [400, 200] * 4 + [400] and other == 200 and after == 429  # the five failures, then refused
    assert refused.status == 429 and int(refused.headers["retry-after"]) > 0
    assert "Too many failed logins" in refused.body.decode()


def test_parallel_guesses_cannot_slip_past_together() -> None:
    """50 guesses sent at once while the first is held at the password check: only five ever reach it."""
    app, gradio = throttle()

    async def scenario() -> list[int]:
        gradio.held.clear()
        guesses = [asyncio.create_task(attempt(app, f"guess-{n}")) for n in range(50)]
        await gradio.arrived.wait()  # the first is held at the check; every other guess has started by now
        gradio.held.set()
        return [answer.status for answer in await asyncio.gather(*guesses)]

    statuses = asyncio.run(scenario())
    assert statuses.count(400) == 5 and statuses.count(429) == 45 and gradio.attempts == 5


def test_without_redis_the_limit_holds_in_memory(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = throttle(redis_server.url, max_failures=2)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="chat_backend.quotas"):
        statuses = asyncio.run(_statuses(app, 3))
    assert statuses == [400, 400, 429]
    assert any("fall back" in record.getMessage() for record in caplog.records)


async def _statuses(app: LoginThrottle, count: int) -> list[int]:
    return [(await attempt(app, f"guess-{n}")).status for n in range(count)]
