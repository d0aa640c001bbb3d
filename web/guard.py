"""guard: what a request must pass before Gradio sees it.

Gradio's routes take bodies of any size, and a chat value the client made up may name any file: given
`{"path": "/any/file"}`, Gradio copies that file into its cache and serves it. `RequestGuard` bounds every
request body (413) and refuses JSON naming a file outside Gradio's upload folder (400); `LoginThrottle`
answers 429 to an address after too many failed logins. Both are plain ASGI, so streamed replies pass
through untouched.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from chat_backend.attachments import PATH_MAX
from chat_backend.quotas import scope_address

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED_ADDRESSES = 100_000  # beyond this the idlest addresses are forgotten, so memory stays bounded


def inside(path: str, folder: str) -> bool:
    """Whether `path` names something under `folder` once `..` and symlinks are resolved; URLs never do."""
    if not path or "://" in path or len(path) > PATH_MAX:
        return False
    root = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def file_paths(data: Any) -> Iterator[str]:
    """Every `"path"` a JSON value holds, at any depth: the shape Gradio reads as a file, with or without meta."""
    if isinstance(data, dict):
        if isinstance(data.get("path"), str):
            yield data["path"]
        for value in data.values():
            yield from file_paths(value)
    elif isinstance(data, list):
        for value in data:
            yield from file_paths(value)


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode("latin-1")
    return next((value.decode("latin-1") for key, value in scope["headers"] if key.lower() == wanted), "")


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A small JSON reply: `{"detail": ...}`, the shape Gradio's own errors use."""
    body = json.dumps({"detail": detail}).encode()
    extra = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    """The client sent more than the limit; the request is answered with 413."""


class RequestGuard:
    """Bounds every request body and refuses client JSON that names a file Gradio did not receive as an upload.

    Uploads (`…/upload`, multipart) may be up to `upload_limit` bytes; any other body up to `body_limit`. A
    declared Content-Length over the limit is refused before a byte is read; a chunked body is counted as it
    streams. JSON bodies are read whole (they are bounded) and every `"path"` in them must lie inside
    `upload_folder`: the browser only ever sends back paths of files it uploaded or the app returned there.
    """

    def __init__(self, app: ASGIApp, *, body_limit: int, upload_limit: int, upload_folder: str) -> None:
        self.app = app
        self.body_limit = body_limit
        self.upload_limit = upload_limit
        self.upload_folder = upload_folder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS_METHODS:
            return await self.app(scope, receive, send)
        limit = self.upload_limit if scope["path"].rstrip("/").endswith("/upload") else self.body_limit
        declared = _header(scope, "content-length")
        if declared.isdigit() and int(declared) > limit:
            return await _too_large(send, limit)
        content_type = _header(scope, "content-type").lower()  # media types are case-insensitive, as FastAPI reads them
        if not content_type or "json" in content_type:  # FastAPI reads a body without a type as JSON too
            return await self._checked_json(scope, receive, send, limit)
        await self._counted(scope, receive, send, limit)

    async def _checked_json(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _too_large(send, limit)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            forged = any(not inside(path, self.upload_folder) for path in file_paths(json.loads(body)))
        except ValueError:
            forged = False  # not JSON after all: Gradio answers that itself
        except RecursionError:  # nested thousands deep: no page sends that, and it would fail further on anyway
            return await _answer(send, 400, "This request is nested too deeply.")
        if forged:
            return await _answer(send, 400, "This request names a file that was not uploaded here.")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: only the disconnect is left to wait for
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the body through while counting; past the limit the app sees a disconnect and the client a 413."""
        size, over, started = 0, False, False

        async def counting() -> Message:
            nonlocal size, over
            message = await receive()
            size += len(message.get("body", b""))
            if size > limit and not started:
                over = True
                return {"type": "http.disconnect"}
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a request cut short; the 413 below replaces it
            started = True
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not over:
                raise
        if over:
            await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    await _answer(send, 413, f"Request too large: this server accepts at most {limit / 1_000_000:g} MB here.")


class _Failures:
    """Login attempts per address in the last `window` seconds. An attempt counts from the moment it starts, so
    parallel guesses cannot slip past the limit together, and is forgotten again when it succeeds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def attempt(self, key: str) -> tuple[float, float]:
        """(seconds to wait, 0) when `key` is over the limit; else (0, a token for `succeeded`)."""
        now = self._clock()
        with self._lock:
            times = self._times.setdefault(key, deque())
            self._times.move_to_end(key)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return times[0] + self.window - now, 0.0
            times.append(now)
            if len(self._times) > MAX_TRACKED_ADDRESSES:
                self._times.popitem(last=False)
            return 0.0, now

    def succeeded(self, key: str, token: float) -> None:
        with self._lock:
            times = self._times.get(key)
            if times and token in times:
                times.remove(token)


class LoginThrottle:
    """After `max_failures` failed logins from one address within `window` seconds, POST /login answers 429
    until the oldest of them is `window` seconds old. Other addresses and successful logins are unaffected."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_failures: int,
        window: float,
        trusted_hops: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.trusted_hops = trusted_hops
        self._attempts = _Failures(max_failures, window, clock) if max_failures > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._attempts is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"].rstrip("/") != "/login"
        ):
            return await self.app(scope, receive, send)
        address = scope_address(scope, self.trusted_hops)
        wait, token = self._attempts.attempt(address)
        if wait:
            seconds = str(math.ceil(wait))
            return await _answer(
                send,
                429,
                f"Too many failed logins from your address. Try again in {seconds} s.",
                {"retry-after": seconds},
            )
        status = 0

        async def watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching)
        if status < 400:
            self._attempts.succeeded(address, token)
