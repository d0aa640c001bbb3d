"""messages: Gradio chat history (either shape) to the API's `messages`, and the context-window budget.

From the browser a message's `content` is a list of typed parts plus `metadata`/`options` keys; through the
API it is a plain string (or a file dict). Both become messages with only `role` and `content`, text as a
string, images as `image_url` parts with a base64 data URL (resized, see `images`), text files and PDFs
inlined with their names. File paths come from the client, so each is checked by `attachments` before it
is read. Notices the app inserted itself carry a `metadata.id` starting with `NOTICE_ID`, the model's thinking
one starting with `THOUGHT_ID`; neither is ever sent back (MiniMax's own chat template drops past turns'
thinking too, and sending it would cost input tokens), nor is a thinking block left at the start of an old reply.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from .attachments import Attachments, Forged, Missing
from .errors import BadInput
from .i18n import Msg
from .images import Prepared, prepare
from .reasoning import answer_of

NOTICE_ID = "chat-notice"
ERROR_NOTICE_ID = f"{NOTICE_ID}-error"
THOUGHT_ID = "chat-thought"
TEXT_SUFFIXES = frozenset(
    [
        ".txt",
        ".md",
        ".markdown",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".xml",
        ".html",
        ".htm",
        ".css",
        ".log",
        ".rst",
        ".tex",
        ".py",
        ".js",
        ".ts",
        ".tsx",
        ".jsx",
        ".java",
        ".kt",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".go",
        ".rs",
        ".rb",
        ".php",
        ".swift",
        ".scala",
        ".sh",
        ".bash",
        ".sql",
        ".r",
        ".m",
        ".lua",
        ".pl",
        ".dart",
        ".vue",
        ".svelte",
    ]
)
IMAGE_TOKENS = 1_000  # rough cost of one image, for the budget only
MESSAGE_OVERHEAD_TOKENS = 4
MAX_REQUEST_TEXT_CHARS = 16_000_000  # documents in one request; the largest window (1M tokens) is ~4M chars
Message = dict[str, Any]
NO_UPLOADS = Attachments()  # reads no file at all: the app passes the folders Gradio uploads to


def is_notice(message: Mapping[str, Any], prefix: str = NOTICE_ID) -> bool:
    """Whether the app itself inserted this message (an error notice or a usage line)."""
    metadata = message.get("metadata") or {}
    return isinstance(metadata, Mapping) and str(metadata.get("id") or "").startswith(prefix)


def is_thought(message: Mapping[str, Any]) -> bool:
    """Whether this message is a reply's thinking, shown folded above its answer."""
    return is_notice(message, THOUGHT_ID)


@dataclass(frozen=True)
class Built:
    """The `messages` for one call, and what the visitor should be told about attachments left out."""

    messages: list[Message]
    notes: list[Msg]  # rendered in the visitor's language by the app


def to_api_messages(
    history: Sequence[Mapping[str, Any]],
    message: str | Mapping[str, Any],
    system_prompt: str = "",
    **options: Any,
) -> list[Message]:
    """`build_messages(...).messages`, for callers that need no notes."""
    return build_messages(history, message, system_prompt, **options).messages


def build_messages(
    history: Sequence[Mapping[str, Any]],
    message: str | Mapping[str, Any],
    system_prompt: str = "",
    *,
    attachments: Attachments = NO_UPLOADS,
    vision: bool = True,
    max_message_chars: int = 0,
) -> Built:
    """The `messages` list for one call: system prompt first, history without notices, then `message`.

    A user message answered only by an error notice is left out, so that one failed turn (an attachment
    too big, say) does not fail every later one; an earlier attachment that is gone becomes a placeholder
    (or its kept text) for the same reason. Consecutive messages of one role are merged, because some
    models require user and assistant turns to alternate.
    """
    content = _message_content(message)
    typed, _ = describe_content(content)
    if max_message_chars and len(typed) > max_message_chars:
        raise BadInput(key="input_too_long", params={"length": f"{len(typed):,}", "limit": f"{max_message_chars:,}"})
    reader = _Reader(attachments, vision)
    reader.check_newest(content)
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for item, failed in zip(history, _failed_turns(history), strict=True):
        role = item.get("role")
        if role not in ("user", "assistant") or is_notice(item) or is_thought(item) or failed:
            continue
        _append(turns, role, reader.parts(item.get("content"), images=role == "user", reply=role == "assistant"))
    newest = reader.parts(content, images=True, newest=True)
    if not newest:
        if reader.unseen:
            raise BadInput(key="input_only_images")
        raise BadInput(key="input_empty")
    _append(turns, "user", newest)
    reader.fit_images()
    prompt = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() else []
    messages = prompt + [{"role": role, "content": _content(parts)} for role, parts in turns]
    return Built(messages, reader.notes())


@dataclass
class _Image:
    """An image part whose data URL is built only if the image fits the request, so that a forged history
    naming one upload a thousand times costs no memory."""

    part: dict[str, Any]
    name: str
    prepared: Prepared
    newest: bool


class _Reader:
    """Reads one request's attachments (checked against `attachments`) and remembers what was left out."""

    def __init__(self, attachments: Attachments, vision: bool) -> None:
        self.attachments = attachments
        self.vision = vision
        self.gone: list[str] = []  # earlier attachments no longer on the server
        self.unseen: list[str] = []  # images not sent because the model does not read images
        self.trimmed: list[str] = []  # earlier images beyond the per-request limits
        self.images: list[_Image] = []
        self.texts: dict[str, str] = {}  # each document read once however often the conversation names it
        self.text_chars = 0
        self.crowded: list[str] = []  # earlier documents beyond MAX_REQUEST_TEXT_CHARS

    def check_newest(self, content: Any) -> None:
        """Refuse the message being sent on count, place and size before any file is read."""
        limits = self.attachments
        files = [(value, name) for kind, value, name in _items(content) if kind == "file"]
        if limits.max_per_message and len(files) > limits.max_per_message:
            raise BadInput(key="input_too_many_files", params={"count": len(files), "limit": limits.max_per_message})
        total = 0
        for path, name in files:
            size = self._stat(limits.resolve(path), name).st_size
            if size > limits.max_file_bytes:
                raise _too_big(name, size, limits.max_file_bytes)
            total += size
        if limits.max_message_bytes and total > limits.max_message_bytes:
            raise BadInput(
                key="input_files_too_big",
                params={"size": f"{total / 1e6:.1f}", "limit": f"{limits.max_message_bytes / 1e6:g}"},
            )

    def parts(self, content: Any, *, images: bool, newest: bool = False, reply: bool = False) -> list[dict[str, Any]]:
        """API content parts from any Gradio content shape; empty text is skipped, and so is the thinking at the
        start of a `reply`."""
        parts = []
        for kind, value, name in _items(content):
            if kind == "text" and reply:
                value = answer_of(value)
            if kind == "text" and value.strip():
                parts.append({"type": "text", "text": value})
            elif kind == "file" and (part := self._file_part(value, name, images, newest)):
                parts.append(part)
        return parts

    def _file_part(self, path: str, name: str, images: bool, newest: bool) -> dict[str, Any]:
        """One attachment as a content part; an empty dict for an image where images are not allowed."""
        try:
            real = self.attachments.resolve(path)
            stat = self._stat(real, name)
        except (Forged, Missing):
            if newest:
                raise
            kept = self.attachments.kept_text(path)
            if kept is None:
                self.gone.append(name)
                return _text_part(f"[attachment {name} is no longer available]")
            return self._document(name, kept, newest)
        kind = _kind(real)
        if kind == "image":
            if not images:
                return {}
            if not self.vision:
                self.unseen.append(name)
                return {} if newest else _text_part(f"[image {name} not shown: this model does not read images]")
            part = {"type": "image_url", "image_url": {"url": ""}}  # filled in by `fit_images` if it is kept
            self.images.append(_Image(part, name, prepare(real, name, stat.st_mtime_ns, stat.st_size), newest))
            return part
        if stat.st_size > self.attachments.max_file_bytes:
            raise _too_big(name, stat.st_size, self.attachments.max_file_bytes)
        text = self.texts.get(real)
        if text is None:
            max_pages = self.attachments.max_pdf_pages
            text = _pdf_text(real, name, max_pages, stat.st_mtime_ns) if kind == "pdf" else _text_of(real, name)
            self.attachments.keep_text(real, stat.st_mtime_ns, Path(real).read_bytes, text)
            self.texts[real] = text
        return self._document(name, text, newest)

    def _document(self, name: str, text: str, newest: bool) -> dict[str, Any]:
        """A document's part, within a per-request total far beyond any model's window, so that a history
        naming big uploads many times cannot fill the memory before the context check refuses it."""
        self.text_chars += len(text)
        if self.text_chars <= MAX_REQUEST_TEXT_CHARS:
            return _file_text(name, text)
        if newest:
            raise BadInput(key="input_file_crowded", params={"name": name})
        self.crowded.append(name)
        return _text_part(f"[attachment {name} left out: this conversation holds too much text]")

    @staticmethod
    def _stat(real: str, name: str) -> os.stat_result:
        try:
            stat = os.stat(real)
        except OSError:
            raise Missing(name) from None
        if not S_ISREG(stat.st_mode):
            raise Missing(name)
        return stat

    def fit_images(self) -> None:
        """Keep the newest images within the per-request count and bytes; older ones become placeholders."""
        limits = self.attachments
        count = total = 0
        urls: dict[str, str] = {}
        for image in reversed(self.images):
            size = len(image.prepared.data)
            count, total = count + 1, total + size
            over_count = bool(limits.max_images_per_request) and count > limits.max_images_per_request
            over_bytes = bool(limits.max_request_image_bytes) and total > limits.max_request_image_bytes
            if not (over_count or over_bytes):
                digest = image.prepared.digest
                if digest not in urls:
                    data = base64.b64encode(image.prepared.data).decode("ascii")
                    urls[digest] = f"data:{image.prepared.mime};base64,{data}"
                image.part["image_url"]["url"] = urls[digest]
                continue
            if image.newest:
                raise BadInput(
                    key="input_images_too_much",
                    params={
                        "count": limits.max_images_per_request,
                        "limit": f"{limits.max_request_image_bytes / 1e6:g}",
                    },
                )
            count, total = count - 1, total - size
            self.trimmed.append(image.name)
            image.part.clear()
            image.part.update(_text_part(f"[image {image.name} left out: too many images in this conversation]"))

    def notes(self) -> list[Msg]:
        """One sentence per kind of thing left out, for a notice in the chat (English has one and many forms)."""
        notes = []
        for key, names in (("note_gone", self.gone), ("note_unseen", self.unseen), ("note_crowded", self.crowded)):
            if names:
                notes.append(Msg(f"{key}_{'many' if len(set(names)) > 1 else 'one'}", {"names": _names(names)}))
        if self.trimmed:
            notes.append(Msg("note_trimmed", {"names": _names(self.trimmed[::-1])}))
        return notes


def _names(names: list[str]) -> str:
    return ", ".join(dict.fromkeys(names))


def _too_big(name: str, size: int, limit: int) -> BadInput:
    return BadInput(
        key="input_file_too_big", params={"name": name, "size": f"{size / 1e6:.1f}", "limit": f"{limit / 1e6:g}"}
    )


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _file_text(name: str, text: str) -> dict[str, Any]:
    return _text_part(f'<file name="{name}">\n{text.rstrip()}\n</file>')


def _failed_turns(history: Sequence[Mapping[str, Any]]) -> list[bool]:
    """For each message, whether it is a user message answered only by an error notice (other notices, such as
    attachment notes, and the reply's thinking may come before it). One pass from the end: linear in the history,
    which a request may make long."""
    failed = [False] * len(history)
    error_next = False  # the nearest later message that counts is an error notice
    for index in range(len(history) - 1, -1, -1):
        item = history[index]
        if is_notice(item, ERROR_NOTICE_ID):
            error_next = True
        elif not (is_notice(item) or is_thought(item)):
            failed[index], error_next = error_next and item.get("role") == "user", False
    return failed


def _message_content(message: str | Mapping[str, Any]) -> Any:
    """ChatInterface's newest message: a string, or `{"text": ..., "files": [...]}` when multimodal."""
    if isinstance(message, Mapping):
        files = [{"path": file} if isinstance(file, str) else file for file in message.get("files") or []]
        return [*files, message.get("text") or ""]
    return message


def _append(turns: list[tuple[str, list[dict[str, Any]]]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if turns and turns[-1][0] == role:
        turns[-1][1].extend(parts)
    else:
        turns.append((role, list(parts)))


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A plain string unless there are images, as the schema prefers for text."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _items(content: Any) -> Iterator[tuple[str, Any, str]]:
    """("text", text, "") or ("file", path, shown name) for each piece of any Gradio content shape;
    UI components and the like are skipped. A file's path is passed on as sent (any type), to be checked."""
    for item in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(item, str):
            yield "text", item, ""
        elif isinstance(item, Mapping) and item.get("type") == "text":
            yield "text", str(item.get("text") or ""), ""
        elif isinstance(item, Mapping):
            inner: Mapping[str, Any] = item["file"] if isinstance(item.get("file"), Mapping) else item
            path = inner.get("path")
            if path:
                shown = inner.get("orig_name") or (os.path.basename(path) if isinstance(path, str) else "")
                yield "file", path, str(shown or "attachment")


def describe_content(content: Any) -> tuple[str, list[str]]:
    """The text of any Gradio content shape and the names of its attachments, without reading files."""
    items = list(_items(content))
    texts = [value for kind, value, _ in items if kind == "text" and value.strip()]
    return "\n\n".join(texts), [name for kind, _, name in items if kind == "file"]


def _kind(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or ""
    if mime.startswith("image/") and mime != "image/svg+xml":  # Pillow converts BMP, TIFF… to what models take
        return "image"
    return "pdf" if mime == "application/pdf" else "text"


def _text_of(path: str, name: str) -> str:
    if Path(path).suffix.lower() not in TEXT_SUFFIXES and not (mimetypes.guess_type(path)[0] or "").startswith("text/"):
        sample = Path(path).read_bytes()[:4096]
        if b"\0" in sample:
            raise BadInput(key="input_not_readable", params={"name": name})
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(key="input_not_utf8", params={"name": name}) from None


@functools.lru_cache(maxsize=16)
def _pdf_text(path: str, name: str, max_pages: int, mtime_ns: int) -> str:
    """Extracted text of every page, cached: PDF parsing is slow and history is re-read every turn."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        count = len(reader.pages)
        pages = [page.extract_text() or "" for page in reader.pages] if count <= max_pages else []
    except (PdfReadError, ValueError, OSError) as exc:
        raise BadInput(key="input_bad_pdf", params={"name": name, "error": type(exc).__name__}) from None
    if count > max_pages:
        raise BadInput(key="input_pdf_pages", params={"name": name, "count": count, "limit": max_pages})
    text = "\n\n".join(f"[page {number}]\n{page}" for number, page in enumerate(pages, 1) if page.strip())
    if not text:
        raise BadInput(key="input_pdf_no_text", params={"name": name})
    return text


def estimate_tokens(message: Mapping[str, Any]) -> int:
    """A cautious token count: UTF-8 bytes / 3 (close for CJK, generous for English), images at a flat rate."""
    content = message["content"]
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    total = MESSAGE_OVERHEAD_TOKENS
    for part in parts:
        total += IMAGE_TOKENS if part["type"] == "image_url" else len(part["text"].encode("utf-8")) // 3 + 1
    return total


def text_length(messages: Sequence[Mapping[str, Any]]) -> int:
    """Characters of text in `messages` (attachments inlined as text included, images not)."""
    total = 0
    for message in messages:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        total += sum(len(part["text"]) for part in parts if part["type"] == "text")
    return total


@dataclass(frozen=True)
class Fitted:
    """Messages that fit the context window, how many earlier messages were left out to get there, and why."""

    messages: list[Message]
    dropped: int
    by_limit: bool = False  # left out for MAX_HISTORY_MESSAGES only: they would have fitted the window


def fit_to_context(messages: list[Message], context_tokens: int, max_tokens: int, max_messages: int = 0) -> Fitted:
    """Drop the oldest turns until the prompt plus `max_tokens` fits (and, if `max_messages` is set, until at
    many earlier messages remain besides the system prompt and the newest one); keeps those two.

    A turn is dropped whole (up to the next user message), so what remains still starts with the user.
    """
    budget = context_tokens - max_tokens
    system = [m for m in messages[:1] if m["role"] == "system"]
    rest = messages[len(system) :]
    sizes = [estimate_tokens(m) for m in rest]
    used = sum(estimate_tokens(m) for m in system) + sum(sizes)
    start, by_window = 0, False

    def too_much() -> bool:
        return used > budget or bool(max_messages and len(rest) - 1 - start > max_messages)

    while too_much() and start < len(rest) - 1:
        by_window = by_window or used > budget
        used -= sizes[start]
        start += 1
        while start < len(rest) - 1 and rest[start]["role"] != "user":
            used -= sizes[start]
            start += 1
    if used > budget:
        raise BadInput(
            key="input_context",
            params={"tokens": f"{used:,}", "reserved": f"{max_tokens:,}", "window": f"{context_tokens:,}"},
        )
    return Fitted(system + rest[start:], start, by_limit=bool(start) and not by_window)
