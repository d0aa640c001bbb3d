"""guard: what a request must be before Gradio sees it, as an allow-list that refuses whatever it cannot judge.

Gradio's routes take bodies of any size and shape, and a chat value the client made up may name any file: given
`{"path": "/any/file"}`, Gradio copies that file into its cache and serves it. `RequestGuard` lets a request
through only once it has read it whole and found it harmless, and answers anything else with 400 (413 when too
large), its own errors included:

- the URL is UTF-8 without control characters; `/gradio_api/file=` names a file under the uploads (or the page's
  own icons), never a URL, which Gradio would fetch and pass on; a `Range` is one plain byte range (Gradio's own
  reading of it failed on 5,000 digits); the routes the page never calls and that cost the server without bound
  are closed: `proxy=` (no app is loaded), `dev/reload` (polls every 50 ms per open request), `deep_link` (copies
  a session's state to disk) and `custom_component/` (no custom components here, and each is printed to the log);
- a body comes only with a method that takes one, never content-encoded (nothing here decodes it);
- uploads (`/gradio_api/upload`) are multipart forms of at most `files_per_upload` parts (each becomes a folder
  and a file on disk; counted as the body streams, by `web.multipart`), the login a form, every other body JSON:
  UTF-8 without a BOM, no key twice, no NaN, at most MAX_JSON_DEPTH deep, and every `"path"` in it a string naming
  something under Gradio's upload folder, and no object in it a chat "component" part (`"type": "component"`, or
  a `"component"` or `"constructor_args"` key): given one, Gradio builds that component on the server with the
  client's arguments (a Button's `icon` copied any file in the temp folder into the served cache); the page
  sends only text and file parts. Gradio then reads the very bytes that were checked, with the same `json.loads`.

A JSON body's value, and the session it names (its top-level `session_hash`), are left in the scope under
`asgi.JSON_KEY` and `asgi.SESSION_KEY` for the middleware inside, so no body is parsed twice.

Plain ASGI, so streamed replies pass through untouched.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from chat_backend.attachments import PATH_MAX

from .asgi import (
    JSON_KEY,
    SESSION_KEY,
    ASGIApp,
    Message,
    Receive,
    Refused,
    Scope,
    Send,
    header,
    header_values,
    pass_counted,
    refuse,
    too_large,
)
from .multipart import PartCounter, boundary_of

log = logging.getLogger(__name__)
UPLOAD_PATH = "/gradio_api/upload"
LOGIN_PATHS = frozenset({"/login", "/login/"})
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")
CLOSED_ROUTES = (
    "/gradio_api/proxy=",
    "/gradio_api/dev/reload",
    "/gradio_api/deep_link",
    "/gradio_api/custom_component/",
)
# Keys of a chat "component" part, whichever Gradio reads it by: its type, or (the type has a default) its fields.
COMPONENT_KEYS = frozenset({"component", "constructor_args"})
_RANGE = re.compile(r"bytes=(\d{1,18}-\d{0,18}|-\d{1,18})")
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORMS = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
MAX_JSON_DEPTH = 64  # the page's deepest value (saved conversations of typed parts with files) is about 10
# Values in one body (about: commas, brackets and braces outside strings). Each costs a microsecond or more to
# build and judge (5 MB of `[]` or `1,` held the event loop for seconds); the page's saved conversations need
# about ten per message, so this leaves room for 10,000 messages.
MAX_JSON_ITEMS = 100_000
LOGIN_BODY_LIMIT = 64_000  # a user name and a password
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def inside(path: str, folder: str) -> bool:
    """Whether `path` names something under `folder` once `..` and symlinks are resolved. Whatever cannot be
    resolved (a NUL, a lone surrogate, longer than PATH_MAX) names no file there, and a URL never does."""
    if not path or "://" in path or len(path) > PATH_MAX or "\x00" in path:
        return False
    try:
        path.encode("utf-8")
        root = os.path.realpath(folder)
        return os.path.commonpath([os.path.realpath(path), root]) == root
    except (ValueError, OSError):  # UnicodeEncodeError is a ValueError
        return False


def objects(data: Any) -> Iterator[dict[str, Any]]:
    """Every object at any depth. Walks without recursion and refuses (`Refused`) past MAX_JSON_DEPTH, so any
    parsed value can be judged."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise Refused(400, "edge_too_deep")
        if isinstance(value, dict):
            yield value
            items: Iterable[Any] = value.values()
        elif isinstance(value, list):
            items = value
        else:
            continue
        stack.extend((item, depth + 1) for item in items if isinstance(item, (dict, list)))


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # the escapes \ud800 to \udfff, paired or not


def path_values(data: Any) -> Iterator[Any]:
    """Every value under a `"path"` key at any depth, whatever its type: what Gradio may read as a file."""
    return (value["path"] for value in objects(data) if "path" in value)


def is_component(value: dict[str, Any]) -> bool:
    """Whether Gradio may read `value` as a chat "component" part, which it builds with the client's arguments."""
    return value.get("type") == "component" or not COMPONENT_KEYS.isdisjoint(value)


def read_json(body: bytes) -> Any:
    """The body as Starlette reads it (`json.loads`), or `Refused` for what two readers might take differently:
    not UTF-8 (`json.loads` would guess UTF-16 or -32), a BOM, a key twice, NaN or Infinity, nesting deeper than
    the parser goes, or a lone surrogate (`"\\ud800"`: Gradio's answer, which echoes it, cannot be encoded, and the
    event stream broke off)."""
    if json_items(body) > MAX_JSON_ITEMS:
        raise Refused(400, "edge_too_complex")
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_one_of_each, parse_constant=_not_a_number)
        if SURROGATE_ESCAPE.search(body):  # only an escape makes one: UTF-8 itself cannot hold a surrogate
            json.dumps(data, ensure_ascii=False).encode("utf-8")  # a lone one cannot be encoded
        return data
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        raise Refused(400, "edge_unreadable") from None


def json_items(body: bytes, limit: int = MAX_JSON_ITEMS) -> int:
    """About how many values a JSON text holds, without parsing it: its commas, brackets and braces outside
    strings, which is exact whenever it decides anything (over `limit` or not). Counted at C speed with strings
    included, and again without them only when that is over the limit; a text with more strings than the limit
    allows is over it anyway (a value has at most two: a key and itself)."""
    rough = body.count(b",") + body.count(b"[") + body.count(b"{")
    if rough <= limit:
        return rough
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")  # no escaped quote is left to end a string
    if plain.count(b'"') > 4 * (limit + 1):
        return rough
    outside = b"".join(plain.split(b'"')[::2])
    return outside.count(b",") + outside.count(b"[") + outside.count(b"{")


def _one_of_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("a key appears twice")
    return value


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """`type/subtype` in lower case and the parameters, names in lower case (a boundary keeps its case)."""
    kind, *params = content_type.split(";")
    parsed = {}
    for param in params:
        name, equals, value = param.partition("=")
        if not equals:
            raise Refused(400, "edge_unreadable")
        parsed[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), parsed


def _is_json(content_type: str) -> bool:
    kind, params = media_type(content_type)
    return kind == "application/json" and all(
        name == "charset" and value.lower() in ("utf-8", "utf8") for name, value in params.items()
    )


def _decoded(raw: bytes) -> str:
    """A URL part percent-decoded as UTF-8, or `Refused` if it is not UTF-8 or holds a control character."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "edge_unreadable") from None
    if _CONTROL.search(text):
        raise Refused(400, "edge_unreadable")
    return text


class RequestGuard:
    """The allow-list in the module docstring. Uploads may be up to `upload_limit` bytes and `files_per_upload`
    parts (0: Gradio's own bound, 1,000), other bodies up to `body_limit`: a declared Content-Length over the limit
    is refused before a byte is read, a chunked body is counted as it streams, and parts as they begin.
    `served_folders` are served at `/gradio_api/file=` besides `upload_folder`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_limit: int,
        upload_limit: int,
        upload_folder: str,
        files_per_upload: int = 0,
        served_folders: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.body_limit = body_limit
        self.upload_limit = upload_limit
        self.files_per_upload = files_per_upload
        self.upload_folder = upload_folder
        self.served_folders = [upload_folder, *served_folders]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # Gradio serves no websockets; nothing else is judged here
            return await send({"type": "websocket.close", "code": 1008})
        try:
            self._check_target(scope)
            expected = self._expected_body(scope)
        except Refused as refusal:
            return await refuse(scope, send, refusal)
        if expected is None:
            return await self.app(scope, receive, send)
        kind, limit = expected
        if kind == "json":
            return await self._checked_json(scope, receive, send, limit)
        await self._counted(scope, receive, send, limit, kind == "upload")

    def _check_target(self, scope: Scope) -> None:
        path = _decoded(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape"))
        _decoded(scope.get("query_string", b"").replace(b"+", b" "))
        if path.startswith(CLOSED_ROUTES):
            raise Refused(400, "edge_unreadable")
        if any(not _RANGE.fullmatch(value) for value in header_values(scope, "range")):
            raise Refused(400, "edge_unreadable")
        route = next((route for route in FILE_ROUTES if path.startswith(route)), None)
        if route and not any(inside(path[len(route) :], folder) for folder in self.served_folders):
            raise Refused(400, "edge_forged")

    def _expected_body(self, scope: Scope) -> tuple[str, int] | None:
        """None for a method without a body, else how to read the body ("json", "upload" or "form") and its size
        limit."""
        lengths = header_values(scope, "content-length")
        framed = bool(header_values(scope, "transfer-encoding")) or any(length.strip() != "0" for length in lengths)
        if scope["method"] in BODYLESS_METHODS:
            if framed:
                raise Refused(400, "edge_unreadable")
            return None
        if len(lengths) > 1 or len(header_values(scope, "content-type")) > 1:
            raise Refused(400, "edge_unreadable")
        if any(coding.strip().lower() != "identity" for coding in header_values(scope, "content-encoding")):
            raise Refused(400, "edge_unreadable")
        path = scope["path"]
        kind, limit = "json", self.body_limit
        if path == UPLOAD_PATH:
            kind, limit = "upload", self.upload_limit
        elif path in LOGIN_PATHS:
            kind, limit = "login", LOGIN_BODY_LIMIT
        if lengths and lengths[0].strip().isdigit() and int(lengths[0]) > limit:
            raise too_large(limit)
        if kind == "json":
            return kind, limit  # its type is judged with the body: an empty one may come with any
        content_type = header(scope, "content-type")
        allowed = {"multipart/form-data"} if kind == "upload" else FORMS
        if media_type(content_type)[0] not in allowed or (kind == "upload" and boundary_of(content_type) is None):
            raise Refused(400, "edge_unreadable")
        return ("upload" if kind == "upload" else "form"), limit

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
                return await refuse(scope, send, too_large(limit))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            data = self._judge(header(scope, "content-type"), body)
        except Refused as refusal:
            return await refuse(scope, send, refusal)
        scope[JSON_KEY] = data
        session = data.get("session_hash") if isinstance(data, dict) else None
        if isinstance(session, str):
            scope[SESSION_KEY] = session
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: only the disconnect is left to wait for
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _judge(self, content_type: str, body: bytes) -> Any:
        """The parsed body (None for an empty one); `Refused` unless it is JSON whose every `"path"` names an
        upload and that holds no component part. Any error of its own refuses too: a guard that cannot judge a
        request never lets it through."""
        if not body:
            return None
        try:
            if not _is_json(content_type):
                raise Refused(400, "edge_unreadable")
            data = read_json(body)
            for value in objects(data):
                if is_component(value):
                    raise Refused(400, "edge_foreign")
                if "path" in value and not self._uploaded(value["path"]):
                    raise Refused(400, "edge_forged")
            return data
        except Refused:
            raise
        except Exception:
            log.exception("the request guard failed on a body; refused")
            raise Refused(400, "edge_unreadable") from None

    def _uploaded(self, path: Any) -> bool:
        return isinstance(path, str) and inside(path, self.upload_folder)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int, upload: bool) -> None:
        """Pass a form through while counting its bytes and, for an upload, its parts: past either limit the app
        sees a disconnect (before the piece that went past it) and the client a 413."""
        boundary = boundary_of(header(scope, "content-type")) if upload and self.files_per_upload else None
        parts = PartCounter(boundary) if boundary else None

        async def within(size: int, piece: bytes) -> Refused | None:
            if size > limit:
                return too_large(limit)
            if parts is not None and parts.feed(piece) > self.files_per_upload:
                return Refused(413, "edge_too_many_files", limit=self.files_per_upload)
            return None

        await pass_counted(self.app, scope, receive, send, within)
