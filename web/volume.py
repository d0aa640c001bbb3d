"""volume: how many bytes one address may send a minute, how much it may upload between two clearings of the
upload folder, and how much that folder may hold in all.

Gradio keeps what it is sent: a chat value stays in the session's state (memory), an upload in its folder (disk),
and a client chooses a fresh session id for every request. So every address gets a budget of body bytes a minute,
one of upload bytes a minute and a share of the upload folder over its clearing period (so that no one address
fills it for everyone), counted in `chat_backend.quotas.Windows` like the other limits (Redis with `REDIS_URL`,
else memory), and the upload folder a cap on its total. A body is counted as its reader (the guard, then Gradio)
takes its first piece: all of its Content-Length at once, so uploads sent together are let in or refused whole,
or, without one, a megabyte ahead as it streams; each file of an upload costs FILE_COST more, counted as its part
begins. What was read counts whatever became of it; a request refused before its body is read (by the guard, or
here: 429, or 413 when the folder is full) costs nothing. `VolumeQuota` is plain ASGI.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass

import anyio
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.strategies import SlidingWindowCounterRateLimiter

from chat_backend.i18n import count_of
from chat_backend.quotas import Windows, scope_address

from .asgi import ASGIApp, Receive, Refused, Scope, Send, WindowCalls, header, header_values, pass_counted
from .guard import BODYLESS_METHODS, UPLOAD_PATH
from .multipart import PartCounter, boundary_of

STREAMED_STEP = 1_000_000  # a body without a Content-Length is counted a megabyte at a time as it arrives
FOLDER_SCAN_S = 5.0  # the upload folder is walked at most this often; uploads let in since are added to its total
# What each file of an upload costs on top of its bytes, against the address's budgets and the folder's cap. Gradio
# gives every file a folder of its own, so a one-byte file takes two inodes and two 4 KiB blocks (1,000 of them in
# one request: 131 KB sent, 8 MB of disk). 32 KiB is those two inodes at ext4's default of one inode per 16 KiB of
# disk, which also covers the two blocks: a folder filled with tiny files then takes no larger share of the disk's
# inodes than of its space.
FILE_COST = 32_768


def folder_bytes(folder: str) -> int:
    """Bytes in the files under `folder`, each with FILE_COST as uploads are charged (0 if it does not exist);
    files that vanish meanwhile count nothing."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(parent, name), follow_symlinks=False).st_size + FILE_COST
    return total


class FolderSize:
    """The upload folder's total as last walked (in a thread, at most every FOLDER_SCAN_S) plus the uploads let
    in since, so that uploads arriving together are counted together before any of them is written."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._walked, self._since, self._at = 0, 0, -math.inf
        self._thread: anyio.CapacityLimiter | None = None

    async def total(self) -> int:
        if time.monotonic() - self._at >= FOLDER_SCAN_S:
            self._at = time.monotonic()  # one walk at a time; meanwhile the others use the last total
            self._thread = self._thread or anyio.CapacityLimiter(1)
            walked = await anyio.to_thread.run_sync(folder_bytes, self.folder, limiter=self._thread)
            self._walked, self._since = walked, 0
        return self._walked + self._since

    def admitted(self, size: int) -> None:
        self._since += size


@dataclass(frozen=True)
class Budget:
    """Bytes one address may send in a window: the window's name (part of its key) and the message of a refusal."""

    name: str
    item: RateLimitItem
    message: str

    def refusal(self, wait: float) -> Refused:
        """429 with the wait, in seconds and (for long windows) minutes."""
        seconds = math.ceil(wait)
        return Refused(
            429,
            self.message,
            {"retry-after": str(seconds)},
            mb=f"{self.item.amount / 1_000_000:g}",
            seconds=str(seconds),
            period=count_of(round(self.item.get_expiry() / 60), "minutes"),
            wait=count_of(math.ceil(seconds / 60), "minutes"),
        )


class VolumeQuota:
    """Bytes per address: `body_per_minute` for request bodies, `upload_per_minute` for uploads and
    `upload_per_address` of uploads in `share_seconds` (the folder's clearing period); 0 turns any of them off. At
    most `upload_store` bytes in `upload_folder` (0: no cap)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_per_minute: int,
        upload_per_minute: int,
        upload_folder: str,
        upload_store: int,
        upload_per_address: int,
        share_seconds: float,
        trusted_hops: int,
        storage_url: str | None = None,
    ) -> None:
        self.app = app
        self.trusted_hops = trusted_hops
        windows = (  # (what it counts, the window's name, bytes, seconds, the refusal's message)
            ("body", "body", body_per_minute, 60, "edge_body_budget"),
            ("upload", "upload", upload_per_minute, 60, "edge_upload_budget"),
            ("upload", "upload_share", upload_per_address, max(1, round(share_seconds)), "edge_upload_share"),
        )
        self._budgets = {
            kind: [
                Budget(name, RateLimitItemPerSecond(amount, seconds), message)
                for counted, name, amount, seconds, message in windows
                if counted == kind and amount > 0
            ]
            for kind in ("body", "upload")
        }
        self._windows = WindowCalls(Windows(storage_url, SlidingWindowCounterRateLimiter))
        self._store = upload_store
        self._folder = FolderSize(upload_folder) if upload_store > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS_METHODS:
            return await self.app(scope, receive, send)
        kind = "upload" if scope["path"] == UPLOAD_PATH else "body"
        budgets = self._budgets[kind]
        folder = self._folder if kind == "upload" else None
        if not budgets and folder is None:
            return await self.app(scope, receive, send)
        address = scope_address(scope, self.trusted_hops)
        lengths = header_values(scope, "content-length")
        declared = int(lengths[0]) if len(lengths) == 1 and lengths[0].strip().isdigit() else None
        boundary = boundary_of(header(scope, "content-type")) if kind == "upload" else None
        parts = PartCounter(boundary) if boundary else None
        charged, seen = 0, 0  # bytes counted against the budgets (ahead while streaming), and against the folder

        async def within(size: int, piece: bytes) -> Refused | None:
            """Counts the body as its reader takes the first piece (then all of a declared length) or the next ones
            (a megabyte ahead), and each part as it begins, against the folder and the budgets, each byte once; a
            refusal ends the reading."""
            nonlocal charged, seen
            files = parts.feed(piece) if parts is not None else 0
            wanted = (declared if declared is not None else size) + files * FILE_COST
            if folder is not None and wanted > seen and await folder.total() + wanted - seen > self._store:
                return Refused(413, "edge_upload_full", mb=f"{self._store / 1_000_000:g}")
            if budgets and wanted > charged:
                cost = wanted - charged if declared is not None else max(wanted - charged, STREAMED_STEP)
                for budget in budgets:  # the minute's first: a refusal there leaves the longer window untouched
                    windows = self._windows.windows
                    if not await self._windows(windows.hit, budget.item, budget.name, address, cost=cost):
                        wait = await self._windows(windows.wait_needed, budget.item, budget.name, address, cost=cost)
                        return budget.refusal(wait)
                charged += cost
            if folder is not None and wanted > seen:
                folder.admitted(wanted - seen)
                seen = wanted
            return None

        await pass_counted(self.app, scope, receive, send, within)
