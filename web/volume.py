"""volume: how many bytes one address may send a minute, and how much the upload folder may hold in all.

Gradio keeps what it is sent: a chat value stays in the session's state (memory), an upload in its folder (disk),
and a client chooses a fresh session id for every request. So every address gets a budget of body bytes a minute
and one of upload bytes a minute, counted in `chat_backend.quotas.Windows` like the other limits (Redis with
`REDIS_URL`, else memory), and the upload folder a cap on its total. A body is counted as its reader (the guard,
then Gradio) takes its first piece: all of its Content-Length at once, so uploads sent together are let in or
refused whole, or, without one, a megabyte ahead as it streams. What was read counts whatever became of it; a
request refused before its body is read (by the guard, or here: 429, or 413 when the folder is full) costs
nothing. `VolumeQuota` is plain ASGI.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import anyio
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.strategies import SlidingWindowCounterRateLimiter

from chat_backend.quotas import Windows, scope_address

from .asgi import ASGIApp, Receive, Refused, Scope, Send, WindowCalls, header_values, pass_counted
from .guard import BODYLESS_METHODS, UPLOAD_PATH

STREAMED_STEP = 1_000_000  # a body without a Content-Length is counted a megabyte at a time as it arrives
FOLDER_SCAN_S = 5.0  # the upload folder is walked at most this often; uploads let in since are added to its total


def folder_bytes(folder: str) -> int:
    """Bytes in the files under `folder` (0 if it does not exist); files that vanish meanwhile count nothing."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(parent, name), follow_symlinks=False).st_size
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


class VolumeQuota:
    """Bytes a minute per address: `body_per_minute` for request bodies, `upload_per_minute` for uploads (0 turns
    either off), and at most `upload_store` bytes in `upload_folder` (0: no cap)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_per_minute: int,
        upload_per_minute: int,
        upload_folder: str,
        upload_store: int,
        trusted_hops: int,
        storage_url: str | None = None,
    ) -> None:
        self.app = app
        self.trusted_hops = trusted_hops
        self._budgets: dict[str, RateLimitItem] = {
            kind: RateLimitItemPerMinute(amount)
            for kind, amount in (("body", body_per_minute), ("upload", upload_per_minute))
            if amount > 0
        }
        self._windows = WindowCalls(Windows(storage_url, SlidingWindowCounterRateLimiter))
        self._store = upload_store
        self._folder = FolderSize(upload_folder) if upload_store > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODYLESS_METHODS:
            return await self.app(scope, receive, send)
        kind = "upload" if scope["path"] == UPLOAD_PATH else "body"
        budget = self._budgets.get(kind)
        folder = self._folder if kind == "upload" else None
        if budget is None and folder is None:
            return await self.app(scope, receive, send)
        address = scope_address(scope, self.trusted_hops)
        lengths = header_values(scope, "content-length")
        declared = int(lengths[0]) if len(lengths) == 1 and lengths[0].strip().isdigit() else None
        charged, seen = 0, 0  # bytes counted against the budget (ahead while streaming), and against the folder

        async def within(size: int) -> Refused | None:
            """Counts the body as its reader takes the first piece (then all of a declared length) or the next ones
            (a megabyte ahead), against the folder and the budget, each byte once; a refusal ends the reading."""
            nonlocal charged, seen
            wanted = declared if declared is not None else size
            if folder is not None and wanted > seen and await folder.total() + wanted - seen > self._store:
                return Refused(413, "edge_upload_full", mb=f"{self._store / 1_000_000:g}")
            if budget is not None and wanted > charged:
                cost = wanted - charged if declared is not None else max(size - charged, STREAMED_STEP)
                if not await self._windows(self._windows.windows.hit, budget, kind, address, cost=cost):
                    wait = await self._windows(self._windows.windows.wait_needed, budget, kind, address, cost=cost)
                    seconds = str(math.ceil(wait))
                    mb = f"{budget.amount / 1_000_000:g}"
                    return Refused(429, f"edge_{kind}_budget", {"retry-after": seconds}, mb=mb, seconds=seconds)
                charged += cost
            if folder is not None and wanted > seen:
                folder.admitted(wanted - seen)
                seen = wanted
            return None

        await pass_counted(self.app, scope, receive, send, within)
