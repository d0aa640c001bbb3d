"""attachments: which files may be read at all, the limits on them, and their kept text.

A message's file paths come from the browser, and Gradio stores what a client sends unchecked, so a path is
only read when its real path lies inside a folder where Gradio itself put uploads (`roots`). Anything else is
forged and gets one wording that says nothing about the path (whether it exists, its size). Text extracted
from documents is kept in the store, keyed by content hash, so a conversation keeps its document after
Gradio's cache is emptied.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BadInput
from .i18n import t
from .store import Store, StoreUnavailable

log = logging.getLogger(__name__)
PATH_MAX = 4096  # Linux's longest path: a longer one names no file, and resolving it could take seconds

FORGED = t("attachment_forged")  # the English notice, for tests and logs
TEXT_NAMESPACE = "attachment-text"  # content hash -> extracted text (UTF-8)
REF_NAMESPACE = "attachment-ref"  # upload path -> content hash, to find the text once the file is gone
DAY = 86_400.0
KEPT_INDEX = 4096  # files whose text this process already stored


class Forged(BadInput):
    """A path Gradio did not receive as an upload here. Not retryable; the wording never names the path."""

    def __init__(self) -> None:
        super().__init__(key="attachment_forged")


class Missing(BadInput):
    """An uploaded file that is gone (Gradio's cache was emptied, or the server restarted)."""

    def __init__(self, name: str) -> None:
        super().__init__(key="attachment_missing", params={"name": name})
        self.name = name


@dataclass(frozen=True)
class Attachments:
    """Where uploads may be read from, the limits on them, and where their text is kept."""

    roots: tuple[str, ...] = ()
    max_file_bytes: int = 10_000_000
    max_pdf_pages: int = 300
    max_per_message: int = 10
    max_message_bytes: int = 25_000_000
    max_request_image_bytes: int = 20_000_000
    max_images_per_request: int = 10
    store: Store | None = field(default=None, compare=False)
    text_ttl: float = 7 * DAY
    text_max_bytes: int = 200_000_000
    _kept: OrderedDict[tuple[str, int], None] = field(default_factory=OrderedDict, compare=False, repr=False)

    @classmethod
    def under(cls, roots: Iterable[str | Path], **limits: object) -> Attachments:
        """Attachments readable only below `roots` (resolved now, so a later symlink swap changes nothing)."""
        return cls(roots=tuple(os.path.realpath(root) for root in roots), **limits)  # type: ignore[arg-type]

    def resolve(self, path: object) -> str:
        """The real path of a file Gradio received as an upload; `Forged` for any other value or place."""
        text = path if isinstance(path, str) else ""
        plain = (
            text and len(text) <= PATH_MAX and "\0" not in text and "://" not in text and not text.startswith("file:")
        )
        real = os.path.realpath(text) if plain else ""
        if not real or not any(real.startswith(root + os.sep) for root in self.roots):
            log.warning("refused an attachment path that Gradio did not receive as an upload")
            raise Forged()
        return real

    def keep_text(self, path: str, mtime_ns: int, read: Callable[[], bytes], text: str) -> None:
        """Remember a document's extracted text for `text_ttl`, once per file and process (`read` gives the
        bytes to hash); a failing store only loses the memory."""
        if self.store is None or (path, mtime_ns) in self._kept:
            return
        digest = hashlib.sha256(read()).hexdigest()
        try:
            self.store.put(TEXT_NAMESPACE, digest, text.encode("utf-8"), ttl=self.text_ttl)
            self.store.put(REF_NAMESPACE, path, digest.encode("ascii"), ttl=self.text_ttl)
            self.store.trim(TEXT_NAMESPACE, self.text_max_bytes)
            self.store.trim(REF_NAMESPACE, self.text_max_bytes // 20)
        except StoreUnavailable as exc:
            log.warning("attachment text not kept, store unavailable: %s", type(exc).__name__)
            return
        self._kept[(path, mtime_ns)] = None
        while len(self._kept) > KEPT_INDEX:
            self._kept.popitem(last=False)

    def kept_text(self, path: object) -> str | None:
        """The text kept for the upload once at `path` (any value a client sent), if any and the store answers."""
        if self.store is None or not isinstance(path, str) or not path or "\0" in path:
            return None
        try:
            digest = self.store.get(REF_NAMESPACE, os.path.realpath(path))
            data = self.store.get(TEXT_NAMESPACE, digest.decode("ascii")) if digest else None
        except StoreUnavailable as exc:
            log.warning("kept attachment text unavailable: %s", type(exc).__name__)
            return None
        return data.decode("utf-8") if data else None
