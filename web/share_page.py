"""share_page: the read-only `/share/<id>` page, its delete route and the few static files it needs.

The page is server-rendered HTML with nothing of the app: no Gradio, no key, no API call. Every response sets
a strict Content-Security-Policy (scripts only from this server, no inline script, no frames, no forms) and
`noindex`, and sends no Referer, so a link in a reply never tells its target the share id. KaTeX is served
from Gradio's own frontend bundle (no CDN); if a Gradio release moves it, maths stays readable as TeX.

The conversation's Markdown is rendered once, when the link is made (`prerender`, charged to the sharer, whose
links are limited per address), and stored as HTML: a visit, which no limit counts, only joins stored HTML with
the page's words in the reader's language. Hostile Markdown costs markdown-it up to 60 µs a character (50,000
characters of `*[` took 3 s), and a visit must not be able to spend that.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from chat_backend.i18n import language, t
from chat_backend.off_loop import store_calls
from chat_backend.shared_links import ID_PATTERN, Shares
from chat_backend.store import REDIS_TIMEOUT_S, StoreUnavailable

from .markdown import code_css, render

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADERS = {**HEADERS, "Cache-Control": "no-store"}  # a deleted link must not live on in a cache
ASSET_HEADERS = {**HEADERS, "Cache-Control": "public, max-age=86400"}
FONT_NAME = re.compile(r"KaTeX_[A-Za-z0-9_-]+\.(?:woff2|woff|ttf)")
# Characters of one conversation rendered as Markdown when it is shared; the rest shows as plain text. Hostile
# Markdown (runs of "*[" or "![[") costs markdown-it up to 60 µs a character, so this bounds a share to about 3 s
# of the sharer's CPU while a real conversation (a few thousand words, about 1 µs a character) renders in full.
MARKDOWN_CHARS = 50_000
STORE_WAIT_S = REDIS_TIMEOUT_S + 1  # a visit waits this long for the store, then gets the "try later" page
LANGUAGE_TAGS = {"en": "en", "zh": "zh-CN"}  # chat_backend.i18n's catalogues, as HTML names them


def routes(shares: Shares) -> list[BaseRoute]:
    """`GET /share/<id>`, `DELETE /share/<id>` (with `Authorization: Bearer <delete token>`), and static files.

    The two share routes run on the event loop and hand the store to threads of their own; a page renders no
    Markdown (see `prerender`).
    """

    async def page(request: Request) -> Response:
        share_id = request.path_params["share_id"]
        lang = language(request.headers.get("accept-language"))  # the page's own words follow the reader
        try:
            found = re.fullmatch(ID_PATTERN, share_id)
            snapshot = await store_calls(STORE_WAIT_S, shares.load, share_id) if found else None
        except StoreUnavailable:
            log.warning("shared page %s… could not be read: the store is unavailable", share_id[:4])
            return _shell(t("sharepage_trouble_title", lang), _message("sharepage_trouble", lang), 503, lang)
        if snapshot is None:
            return _shell(t("sharepage_missing_title", lang), _message("sharepage_missing", lang), 404, lang)
        title = str(snapshot.get("title") or t("sharepage_title", lang))
        return _shell(title, _conversation(snapshot, lang), 200, lang)

    async def delete(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        share_id = request.path_params["share_id"]
        try:
            deleted = scheme.lower() == "bearer" and await store_calls(
                STORE_WAIT_S, shares.delete, share_id, token.strip()
            )
        except StoreUnavailable:
            return Response("The server's storage is not responding; try again.", 503, headers=HEADERS)
        return Response(status_code=204 if deleted else 404, headers=HEADERS)

    return [
        Route("/share/static/{name}", _asset, methods=["GET"]),
        Route("/share/{share_id}", page, methods=["GET"]),
        Route("/share/{share_id}", delete, methods=["DELETE"]),
    ]


def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name in _GENERATED_CSS:
        return Response(_GENERATED_CSS[name](), media_type="text/css", headers=ASSET_HEADERS)
    path = _assets().get(name) or (_katex_dir() / name if FONT_NAME.fullmatch(name) else None)
    if path is None or not path.is_file():
        return Response("Not found", 404, headers=HEADERS)
    return FileResponse(path, headers=ASSET_HEADERS)


@functools.cache
def _assets() -> dict[str, Path]:
    """Our own files, and KaTeX's script under a stable name (Gradio's names carry a hash)."""
    files = {path.name: path for path in STATIC.iterdir()}
    found = sorted(_katex_dir().glob("katex-*.js"))
    if found:
        files["katex.js"] = found[0]
    return files


@functools.cache
def _katex_css() -> str:
    """Gradio's KaTeX stylesheet with its rules unscoped: Gradio prefixes each with `.gradio-container-<version>`."""
    found = sorted(_katex_dir().glob("katex-*.css"))
    return re.sub(r"\.gradio-container-[\w-]+\s+", "", found[0].read_text(encoding="utf-8")) if found else ""


_GENERATED_CSS = {"code.css": code_css, "katex.css": _katex_css}


@functools.cache
def _katex_dir() -> Path:
    """Gradio's frontend assets folder, found without importing Gradio."""
    spec = importlib.util.find_spec("gradio")
    origin = Path(spec.origin) if spec and spec.origin else Path("/nonexistent")
    return origin.parent / "templates" / "frontend" / "assets"


def _shell(title: str, body: str, status: int, lang: str) -> HTMLResponse:
    copy, copied = html.escape(t("sharepage_copy", lang)), html.escape(t("sharepage_copied", lang))
    document = f"""<!doctype html>
<html lang="{LANGUAGE_TAGS[lang]}" data-copy="{copy}" data-copied="{copied}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="color-scheme" content="light dark">
<title>{html.escape(title)} · MiniMax Chat</title>
<link rel="stylesheet" href="static/share.css">
<link rel="stylesheet" href="static/code.css">
<link rel="stylesheet" href="static/katex.css">
<script type="module" src="static/share.js"></script>
</head>
<body>
{body}
<footer><a class="start" href="../">{html.escape(t("sharepage_start", lang))}</a></footer>
</body>
</html>
"""
    return HTMLResponse(document, status, headers=PAGE_HEADERS)


def _message(key: str, lang: str) -> str:
    """The page for a link that leads nowhere (`key` "sharepage_missing") or can't be read now."""
    heading, text = (
        html.escape(t(f"{key}_heading", lang), quote=False),
        html.escape(t(f"{key}_text", lang), quote=False),
    )
    return f'<main class="missing"><h1>{heading}</h1><p>{text}</p></main>'


def prerender(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot as stored: the system prompt and each message's text replaced by their HTML (`system_prompt_html`,
    `html`), rendered here once, in order, while MARKDOWN_CHARS last. Nothing else of the page is in it: the
    words around the conversation follow each reader's language."""
    markdown = _Markdown(MARKDOWN_CHARS)
    stored = {key: value for key, value in snapshot.items() if key != "system_prompt"}
    prompt = snapshot.get("system_prompt")
    stored["system_prompt_html"] = markdown(str(prompt)) if prompt else None
    stored["messages"] = [
        {**{key: value for key, value in message.items() if key != "text"}, "html": markdown(str(message["text"]))}
        for message in snapshot.get("messages") or []
    ]
    return stored


def _conversation(snapshot: dict[str, Any], lang: str) -> str:
    """The stored HTML between the page's own words: string joins only, cheap enough for the event loop."""
    created = time.strftime(t("share_date_format", lang), time.gmtime(float(snapshot.get("created") or 0)))
    meta = t("sharepage_meta", lang, model=str(snapshot.get("model") or "?"), date=created)
    parts = [
        "<header>",
        f"<h1>{html.escape(str(snapshot.get('title') or t('sharepage_title', lang)))}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
        "</header>",
        "<main>",
    ]
    prompt = _stored_html(snapshot, "system_prompt_html", "system_prompt")
    if prompt:
        parts.append(_fold(t("sharepage_system_prompt", lang), prompt, "system"))
    you, assistant = (html.escape(t(key, lang)) for key in ("sharepage_you", "sharepage_assistant"))
    not_included = html.escape(t("sharepage_not_included", lang))
    for message in snapshot.get("messages") or []:
        parts.append(_message_html(message, you if message.get("role") == "user" else assistant, not_included))
    if snapshot.get("left_out"):
        names = ", ".join(str(name) for name in snapshot["left_out"])
        parts.append(f'<p class="left-out">{html.escape(t("sharepage_left_out", lang, names=names))}</p>')
    parts.append("</main>")
    return "\n".join(parts)


class _Markdown:
    """Renders text as Markdown while the page's budget of characters lasts, then as plain text."""

    def __init__(self, budget: int) -> None:
        self.left = budget

    def __call__(self, text: str) -> str:
        if len(text) > self.left:
            return _plain(text)
        self.left -= len(text)
        return render(text)


def _plain(text: str) -> str:
    return f'<pre class="plain">{html.escape(text, quote=False)}</pre>'


def _stored_html(record: Mapping[str, Any], key: str, text_key: str) -> str:
    """The HTML stored under `key`; a link made before pages were rendered at share time holds only its text
    (under `text_key`), which shows plain rather than cost a visit a render."""
    if key in record:
        return str(record[key] or "")
    text = str(record.get(text_key) or "")
    return _plain(text) if text else ""


def _message_html(message: Mapping[str, Any], label: str, not_included: str) -> str:
    body = _stored_html(message, "html", "text")
    for kind in ("notice", "thought"):  # folded, as the chat shows them; a thought sits apart above its answer
        if kind in message:
            return _fold(str(message[kind]), body, kind)
    role = "user" if message.get("role") == "user" else "bot"
    names = message.get("files") or []
    files = "".join(f"<li>📎 {html.escape(str(name))} <em>{not_included}</em></li>" for name in names)
    files_html = f'<ul class="files">{files}</ul>' if files else ""
    return (
        f'<article class="message {role}"><h2 class="visually-hidden">{label}</h2>{files_html}'
        f'<div class="bubble md">{body}</div></article>'
    )


def _fold(title: str, body: str, kind: str) -> str:
    return f'<details class="{kind}"><summary>{html.escape(title)}</summary><div class="md">{body}</div></details>'
