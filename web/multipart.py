"""multipart: the parts of an upload's multipart body, counted as it streams past, without parsing it.

Each file an upload carries becomes a folder and a file on disk, whatever its size, so the edge bounds and charges
an upload by its parts as well as its bytes. It reads the boundary as Gradio does (python-multipart's
`parse_options_header`) and counts every `--boundary` not followed by `--` (the closing one): that is every part
Gradio's parser can begin, and more if the boundary also appears where the parser would not look for it, which
only a forged body does. The count does not depend on how the body is cut into pieces.
"""

from __future__ import annotations

from python_multipart.multipart import parse_options_header

MAX_BOUNDARY = 70  # RFC 2046 §5.1.1


def boundary_of(content_type: str) -> bytes | None:
    """The multipart boundary the content type names, as Gradio reads it; None if it names none, one longer than
    RFC 2046 allows, or the header cannot be read (then Gradio could not read it either)."""
    try:
        boundary = parse_options_header(content_type)[1].get(b"boundary", b"")
    except ValueError:  # a character beyond latin-1: not from an HTTP header
        return None
    return boundary if 0 < len(boundary) <= MAX_BOUNDARY else None


class PartCounter:
    """Parts begun so far in a multipart body fed to it piece by piece."""

    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"--" + boundary
        self._pending = b""  # the end of what was fed that may hold the start of a delimiter, or one still undecided
        self.parts = 0

    def feed(self, piece: bytes) -> int:
        """Counts the parts begun in `piece`; the total so far. A delimiter is decided by the two bytes after it,
        so one at the very end of a piece waits for the next."""
        data = self._pending + piece
        start = 0
        while (found := data.find(self._delimiter, start)) >= 0:
            after = found + len(self._delimiter)
            if len(data) < after + 2:
                self._pending = data[found:]
                return self.parts
            self.parts += data[after : after + 2] != b"--"
            start = after
        self._pending = data[max(start, len(data) - len(self._delimiter) + 1) :]
        return self.parts
