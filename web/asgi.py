"""asgi: what the edge middleware (guard, volume, login throttle, page headers) shares: ASGI types, reading a
request's headers, and the JSON refusal they all answer with."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any, TypeVar

import anyio

from chat_backend.i18n import language, t
from chat_backend.quotas import Windows

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")
STORE_THREADS = 4  # per middleware: Redis calls at once while its answers are slow
SESSION_KEY = "chat.session_hash"  # scope key: the session a JSON body names, as the guard read it
JSON_KEY = "chat.json"  # scope key: a JSON body's value, as the guard read it


def header_values(scope: Scope, name: str) -> list[str]:
    """Every value of the header `name` (case-insensitive), in order: two of one kind are for the caller to judge."""
    wanted = name.encode("latin-1")
    return [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == wanted]


def header(scope: Scope, name: str) -> str:
    values = header_values(scope, name)
    return values[0] if values else ""


class Refused(Exception):
    """A request not let through: its status, the catalogue key (and parameters) of the reason, extra headers."""

    def __init__(self, status: int, key: str, headers: dict[str, str] | None = None, **params: Any) -> None:
        super().__init__(key)
        self.status, self.key, self.headers, self.params = status, key, headers or {}, params


def too_large(limit: int) -> Refused:
    return Refused(413, "edge_too_large", mb=f"{limit / 1_000_000:g}")


async def refuse(scope: Scope, send: Send, refusal: Refused) -> None:
    """The refusal in the visitor's language, in the shape the page shows: `{"detail": ...}` as Gradio's own
    errors, except for an upload, whose error the page shows as the body's text ("HTTP 429: <text>")."""
    detail = t(refusal.key, language(header(scope, "accept-language")), **refusal.params)
    if scope["path"].endswith("/upload"):
        body, kind = detail.encode(), b"text/plain; charset=utf-8"
    else:
        body, kind = json.dumps({"detail": detail}).encode(), b"application/json"
    await answer(send, refusal.status, body, kind, refusal.headers)


async def answer(send: Send, status: int, body: bytes, kind: bytes, headers: dict[str, str] | None = None) -> None:
    """A whole answer from the edge itself: `status`, `body` of content type `kind`, and extra `headers`."""
    extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def pass_counted(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, check: Callable[[int, bytes], Awaitable[Refused | None]]
) -> None:
    """Pass the request on, asking `check` about the body as each piece arrives (its bytes so far, and the piece).
    Once it answers with a refusal (before the app has begun its answer), the app sees the client disconnect and
    the client gets the refusal instead: the body is never held whole here, and never reaches the app past the
    refusal."""
    size, refusal, started = 0, None, False

    async def counting() -> Message:
        nonlocal size, refusal
        message = await receive()
        piece = message.get("body", b"")
        size += len(piece)
        if refusal is None and not started:
            refusal = await check(size, piece)
        return {"type": "http.disconnect"} if refusal is not None else message

    async def sending(message: Message) -> None:
        nonlocal started
        if refusal is not None:
            return  # the app's answer to a request cut short; the refusal below replaces it
        started = True
        await send(message)

    try:
        await app(scope, counting, sending)
    except Exception:
        if refusal is None:
            raise
    if refusal is not None:
        await refuse(scope, send, refusal)


class WindowCalls:
    """A `Windows` called from the event loop: directly while its windows are in memory (no I/O), else in one of a
    few threads of its own, so that a slow Redis holds those threads, never the loop or anyio's shared pool."""

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self._threads: anyio.CapacityLimiter | None = None  # made on first use: it belongs to the running loop

    async def __call__(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.windows.shared:
            return method(*args, **kwargs)
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(STORE_THREADS)
        return await anyio.to_thread.run_sync(partial(method, *args, **kwargs), limiter=self._threads)
