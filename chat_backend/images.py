"""images: attached images resized for the model and re-encoded, cached by content hash within a byte bound.

Vision models see about 1,568 px on the long side at most, so a 12-megapixel photo sent whole costs upload
time, memory and tokens for nothing. Every turn re-sends the conversation's images, so the small versions are
cached by content hash (with a small index from path and modification time to the hash, so a cached image is
not even read again).
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput

LONG_SIDE = 1568
QUALITY = 85
MAX_PIXELS = 50_000_000  # refused beyond this before decoding: a non-JPEG decodes whole (up to 200 MB of RGBA)
DECODERS = 2  # images decoded at once, server-wide, so concurrent visitors cannot stack decodes in memory
CACHE_BYTES = 64_000_000
INDEX_ENTRIES = 1024
SENT_AS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


@dataclass(frozen=True)
class Prepared:
    """An image as it is sent: its bytes, their MIME type, and the hash of the original file."""

    data: bytes
    mime: str
    digest: str


class _Cache:
    """Prepared images by content hash, oldest evicted first past `max_bytes`; thread-safe."""

    def __init__(self, max_bytes: int, index_entries: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, Prepared] = OrderedDict()
        self._index: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._index_entries = index_entries
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, key: tuple[str, int, int]) -> Prepared | None:
        with self._lock:
            digest = self._index.get(key)
            found = self._entries.get(digest) if digest else None
            if found:
                self._entries.move_to_end(found.digest)
            return found

    def find(self, digest: str) -> Prepared | None:
        with self._lock:
            return self._entries.get(digest)

    def add(self, key: tuple[str, int, int], image: Prepared) -> None:
        with self._lock:
            self._index[key] = image.digest
            self._index.move_to_end(key)
            while len(self._index) > self._index_entries:
                self._index.popitem(last=False)
            if image.digest not in self._entries and len(image.data) <= self._max_bytes:
                self._entries[image.digest] = image
                self._bytes += len(image.data)
            while self._bytes > self._max_bytes:
                self._bytes -= len(self._entries.popitem(last=False)[1].data)


_CACHE = _Cache(CACHE_BYTES, INDEX_ENTRIES)
_DECODING = threading.BoundedSemaphore(DECODERS)


def prepare(path: str, name: str, mtime_ns: int, size: int) -> Prepared:
    """The image at `path` as it should be sent; `BadInput` naming `name` when it is not a readable image."""
    key = (path, mtime_ns, size)
    if cached := _CACHE.lookup(key):
        return cached
    original = Path(path).read_bytes()
    digest = hashlib.sha256(original).hexdigest()
    image = _CACHE.find(digest)
    if image is None:
        with _DECODING:
            image = Prepared(*_shrink(original, name), digest)
    _CACHE.add(key, image)
    return image


def _shrink(original: bytes, name: str) -> tuple[bytes, str]:
    """The smallest of: the original (if already small enough and of a sendable kind), JPEG, or PNG."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(original)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadInput(
                    key="image_too_many_pixels",
                    params={
                        "name": name,
                        "width": f"{image.width:,}",
                        "height": f"{image.height:,}",
                        "limit": MAX_PIXELS // 1_000_000,
                    },
                )
            source_format = image.format or ""
            keep = max(image.size) <= LONG_SIDE and source_format in SENT_AS and image.getexif().get(0x0112, 1) == 1
            image.draft("RGB", (LONG_SIDE, LONG_SIDE))  # JPEG only: decode at a fraction of the size
            frame = ImageOps.exif_transpose(image)
            frame.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            candidates = [(_encode(frame, "PNG"), SENT_AS["PNG"])] if alpha or source_format == "PNG" else []
            if not alpha:  # JPEG would turn transparency black
                candidates.append((_encode(frame.convert("RGB"), "JPEG"), SENT_AS["JPEG"]))
    except BadInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise BadInput(key="image_unreadable", params={"name": name}) from None
    if keep:  # already small, and not rotated by EXIF (which some models ignore)
        candidates.append((original, SENT_AS[source_format]))
    return min(candidates, key=lambda candidate: len(candidate[0]))


def _encode(image: object, kind: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": QUALITY, "optimize": True} if kind == "JPEG" else {"optimize": True}
    image.save(buffer, kind, **options)  # type: ignore[attr-defined]
    return buffer.getvalue()
