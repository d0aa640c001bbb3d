"""health: liveness, readiness and Prometheus metrics beside the UI, cheap enough to poll every second.

`/healthz` says the process answers (no upstream call); `/healthz/ready` turns 503 while the replica drains,
so the balancer sends new visitors elsewhere; `/metrics` needs `Authorization: Bearer $METRICS_TOKEN` and is
404 when no token is set, so a public deployment shows nothing by default.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from chat_backend.metrics import Replies, exposition


def routes(replies: Replies, metrics_token: str | None) -> list[BaseRoute]:
    """The three routes, reading the drain state of `replies`."""

    async def alive(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def ready(request: Request) -> Response:
        if replies.draining:
            return PlainTextResponse("draining", status_code=503)
        return PlainTextResponse("ready")

    async def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not metrics_token or not hmac.compare_digest(given.encode(), metrics_token.encode()):
            return PlainTextResponse("Not Found", status_code=404)  # the same answer as no route at all
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    return [
        Route("/healthz", alive, methods=["GET", "HEAD"]),
        Route("/healthz/ready", ready, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
