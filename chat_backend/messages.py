"""messages: Gradio chat history (either shape) to the API's `messages`, and the context-window budget.

From the browser a message's `content` is a list of typed parts plus `metadata`/`options` keys; through the
API it is a plain string (or a file dict). Both become messages with only `role` and `content`, text as a
string, images as `image_url` parts with a base64 data URL, text files and PDFs inlined with their names.
Notices the app inserted itself carry a `metadata.id` starting with `NOTICE_ID` and are never sent back.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput

NOTICE_ID = "chat-notice"
ERROR_NOTICE_ID = f"{NOTICE_ID}-error"
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
TEXT_SUFFIXES = frozenset(
    ".txt .md .markdown .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .xml .html .htm .css .log .rst .tex "
    ".py .js .ts .tsx .jsx .java .kt .c .h .cc .cpp .hpp .cs .go .rs .rb .php .swift .scala .sh .bash .sql .r "
    ".m .lua .pl .dart .vue .svelte".split()
)
IMAGE_TOKENS = 1_000  # rough cost of one image, for the budget only
MESSAGE_OVERHEAD_TOKENS = 4
Message = dict[str, Any]


def is_notice(message: Mapping[str, Any], prefix: str = NOTICE_ID) -> bool:
    """Whether the app itself inserted this message (an error notice or a usage line)."""
    metadata = message.get("metadata") or {}
    return isinstance(metadata, Mapping) and str(metadata.get("id") or "").startswith(prefix)


def to_api_messages(
    history: Sequence[Mapping[str, Any]],
    message: str | Mapping[str, Any],
    system_prompt: str = "",
    *,
    max_attachment_bytes: int = 10_000_000,
    max_pdf_pages: int = 300,
    max_message_chars: int = 0,
) -> list[Message]:
    """The `messages` list for one call: system prompt first, history without notices, then `message`.

    A user message answered only by an error notice is left out, so that one failed turn (an attachment
    too big, say) does not fail every later one. Consecutive messages of one role are merged, because some
    models require user and assistant turns to alternate.
    """
    read = functools.partial(_parts_of, max_bytes=max_attachment_bytes, max_pages=max_pdf_pages)
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for index, item in enumerate(history):
        role = item.get("role")
        if role not in ("user", "assistant") or is_notice(item) or _failed_turn(history, index):
            continue
        _append(turns, role, read(item.get("content"), images=role == "user"))
    content = _message_content(message)
    typed, _ = describe_content(content)
    if max_message_chars and len(typed) > max_message_chars:
        raise BadInput(
            f"This message is {len(typed):,} characters; the limit is {max_message_chars:,}. "
            "Shorten it, or attach the text as a file."
        )
    newest = read(content, images=True)
    if not newest:
        raise BadInput("Type a message or attach a file first.")
    _append(turns, "user", newest)
    prompt = [{"role": "system", "content": system_prompt.strip()}] if system_prompt.strip() else []
    return prompt + [{"role": role, "content": _content(parts)} for role, parts in turns]


def _failed_turn(history: Sequence[Mapping[str, Any]], index: int) -> bool:
    following = history[index + 1] if index + 1 < len(history) else None
    return history[index].get("role") == "user" and following is not None and is_notice(following, ERROR_NOTICE_ID)


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


def _items(content: Any) -> Iterator[tuple[str, str, str]]:
    """("text", text, "") or ("file", path, shown name) for each piece of any Gradio content shape;
    UI components and the like are skipped."""
    for item in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(item, str):
            yield "text", item, ""
        elif isinstance(item, Mapping) and item.get("type") == "text":
            yield "text", str(item.get("text") or ""), ""
        elif isinstance(item, Mapping):
            inner = item.get("file") if isinstance(item.get("file"), Mapping) else item
            path = inner.get("path")
            if isinstance(path, str) and path:
                yield "file", path, str(inner.get("orig_name") or os.path.basename(path))


def _parts_of(content: Any, *, images: bool, max_bytes: int, max_pages: int) -> list[dict[str, Any]]:
    """API content parts from any Gradio content shape; empty text is skipped."""
    parts = []
    for kind, value, name in _items(content):
        if kind == "text" and value.strip():
            parts.append({"type": "text", "text": value})
        elif kind == "file" and (part := _file_part(value, name, images, max_bytes, max_pages)):
            parts.append(part)
    return parts


def describe_content(content: Any) -> tuple[str, list[str]]:
    """The text of any Gradio content shape and the names of its attachments, without reading files."""
    items = list(_items(content))
    texts = [value for kind, value, _ in items if kind == "text" and value.strip()]
    return "\n\n".join(texts), [name for kind, _, name in items if kind == "file"]


def _file_part(path: str, name: str, images: bool, max_bytes: int, max_pages: int) -> dict[str, Any]:
    """One attachment as a content part; an empty dict for an image where images are not allowed."""
    try:
        stat = os.stat(path)
    except OSError:
        raise BadInput(f"The attachment {name} is no longer available; attach it again.") from None
    if stat.st_size > max_bytes:
        raise BadInput(f"{name} is {stat.st_size / 1e6:.1f} MB; attachments may be at most {max_bytes / 1e6:g} MB.")
    kind = _kind(path)
    if kind == "image":
        url = _image_data_url(path, stat.st_mtime_ns, stat.st_size)
        return {"type": "image_url", "image_url": {"url": url}} if images else {}
    text = _pdf_text(path, name, max_pages, stat.st_mtime_ns) if kind == "pdf" else _text_of(path, name)
    return {"type": "text", "text": f'<file name="{name}">\n{text.rstrip()}\n</file>'}


def _kind(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or ""
    if mime in IMAGE_TYPES:
        return "image"
    return "pdf" if mime == "application/pdf" else "text"


@functools.lru_cache(maxsize=16)
def _image_data_url(path: str, mtime_ns: int, size: int) -> str:
    """Cached by path and modification time: history is re-read every turn."""
    mime = mimetypes.guess_type(path)[0]
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def _text_of(path: str, name: str) -> str:
    if Path(path).suffix.lower() not in TEXT_SUFFIXES and not (mimetypes.guess_type(path)[0] or "").startswith("text/"):
        sample = Path(path).read_bytes()[:4096]
        if b"\0" in sample:
            raise BadInput(f"{name} is not a text file, PDF or image (PNG, JPG, GIF, WEBP), so the model can't read it.")
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput(f"{name} is not UTF-8 text; save it as UTF-8 and attach it again.") from None


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
        raise BadInput(f"{name} could not be read as a PDF ({type(exc).__name__}).") from None
    if count > max_pages:
        raise BadInput(f"{name} has {count} pages; PDFs may have at most {max_pages}.")
    text = "\n\n".join(f"[page {number}]\n{page}" for number, page in enumerate(pages, 1) if page.strip())
    if not text:
        raise BadInput(f"{name} has no extractable text (a scanned PDF?); attach its pages as images instead.")
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
    rest = messages[len(system):]
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
            f"This message is about {used:,} tokens; with {max_tokens:,} reserved for the reply it does not fit "
            f"the model's {context_tokens:,}-token window. Shorten it, lower Max tokens, or pick a model with a "
            "larger window."
        )
    return Fitted(system + rest[start:], start, by_limit=bool(start) and not by_window)

