"""sessions: Gradio's per-session state, forgotten once idle.

Gradio keeps each session's state in its process until `state_session_capacity` newer sessions push it out, and
a script may open a fresh session with every request. The capacity is a launch option (STATE_SESSIONS);
`SessionExpiry` adds the expiry Gradio lacks: sessions unused for `max_idle` seconds are dropped, oldest first.
Gradio's StateHolder keeps sessions in order of use with the time of each use (`session_data`,
`time_last_used`); tests/test_volume.py checks that Gradio still does.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from .asgi import ASGIApp, Receive, Scope, Send

SWEEP_EVERY_S = 30.0


def forget_idle(holder: Any, max_idle: float, now: datetime.datetime | None = None) -> int:
    """Drop the sessions of Gradio's `holder` last used more than `max_idle` seconds before `now`; how many.

    The holder moves a session to the end of `session_data` whenever it is used, so the idle ones are at the
    front: the walk stops at the first recent one. A session whose time of use is unknown counts as idle.
    """
    cutoff = (now or datetime.datetime.now()) - datetime.timedelta(seconds=max_idle)
    dropped = 0
    with holder.lock:
        while holder.session_data:
            oldest = next(iter(holder.session_data))
            used = holder.time_last_used.get(oldest)
            if used is not None and used > cutoff:
                break
            holder.session_data.pop(oldest)
            holder.time_last_used.pop(oldest, None)
            dropped += 1
    return dropped


class SessionExpiry:
    """At most every SWEEP_EVERY_S, as a request arrives, forgets the sessions idle for over `max_idle` seconds
    (0: never). The sweep runs on the event loop, where Gradio itself reads and writes session state."""

    def __init__(self, app: ASGIApp, *, max_idle: float) -> None:
        self.app = app
        self.max_idle = max_idle
        self._next = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.max_idle > 0 and scope["type"] == "http" and time.monotonic() >= self._next:
            self._next = time.monotonic() + SWEEP_EVERY_S
            holder = getattr(scope.get("app"), "state_holder", None)
            if holder is not None:
                forget_idle(holder, self.max_idle)
        await self.app(scope, receive, send)
