"""One HTTP request through an ASGI app in this process, as uvicorn would hand it over: for middleware tests that
need no server (the guard, the login throttle, the volume limits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHUNK = 4096  # the body arrives in pieces of this size, as from a socket


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def request(
    app: Any,
    path: str = "/",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    client: str = "127.0.0.1",
    query: bytes = b"",
    app_state: Any = None,
) -> Answer:
    """Send one request to `app` and collect its answer; after the body the app sees a disconnect. `app_state` is
    what Starlette puts in the scope as "app" (for Gradio, its App: `state_holder` and the rest)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()],
        "client": (client, 1),
        "app": app_state,
    }
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)] or [b""]
    messages = iter(
        [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    )
    answer = Answer()

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    await app(scope, receive, send)
    return answer


class Recorder:
    """A stand-in for Gradio: records each body it was handed (read whole) and answers `status` with `{}`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
