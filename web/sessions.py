"""sessions: Gradio's per-session state, forgotten once idle, and at most so many sessions per client address.

Gradio keeps each session's state in its process until `state_session_capacity` newer sessions push it out, and
a script may open a fresh session with every request. The capacity is a launch option (STATE_SESSIONS);
`SessionExpiry` adds the expiry Gradio lacks: sessions unused for `max_idle` seconds are dropped, oldest first.
Gradio's StateHolder keeps sessions in order of use with the time of each use (`session_data`,
`time_last_used`); tests/test_volume.py checks that Gradio still does.

Gradio's capacity is one LRU for everyone, so a script opening fresh sessions (cheap unqueued steps, a few
hundred bytes each) would push out every other visitor's state, the /chat API's kept history among it.
`SessionsPerAddress` bounds the sessions each client address holds: past the bound, that address's own least
recently used session is forgotten, never another address's.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from chat_backend.quotas import scope_address

from .asgi import SESSION_KEY, ASGIApp, Message, Receive, Scope, Send

SWEEP_EVERY_S = 30.0
MAX_CALL_ANSWER = 1024  # bytes of a `/call/<api>` answer read for its event id (Gradio's is ~50)


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
            _forget(holder, oldest)
            dropped += 1
    return dropped


def _forget(holder: Any, session: str) -> None:
    """Drop one session's state from Gradio's `holder`; the caller holds `holder.lock`."""
    holder.session_data.pop(session, None)
    holder.time_last_used.pop(session, None)


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


def session_named(scope: Scope) -> str | None:
    """The Gradio session a request names: its JSON body's `session_hash` (as the guard read it) or, for the
    queue's stream, the query's."""
    named = scope.get(SESSION_KEY)
    if named is None:
        found = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
        named = found[0] if found else None
    return named


class SessionsPerAddress:
    """Each client address holds at most `limit` sessions in Gradio's state (0: no cap); one more forgets that
    address's own least recently used. A session belongs to the address that used it last.

    Runs inside the guard (which reads the body's session) and on the event loop, as Gradio's own state calls do.
    What it tracks of sessions Gradio has since forgotten is swept every SWEEP_EVERY_S; a session seen within the
    last sweep is kept even before Gradio has made it (a queued event makes it when it runs).
    """

    def __init__(self, app: ASGIApp, *, limit: int, trusted_hops: int) -> None:
        self.app = app
        self.limit = limit
        self.trusted_hops = trusted_hops
        self._owned: dict[str, OrderedDict[str, float]] = {}  # address → its sessions and when each was last seen
        self._owner: dict[str, str] = {}  # session → the address that used it last
        self._next = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        holder = getattr(scope.get("app"), "state_holder", None)
        if self.limit <= 0 or scope["type"] != "http" or holder is None:
            return await self.app(scope, receive, send)
        self._sweep(holder)
        address = scope_address(scope, self.trusted_hops)
        session = session_named(scope)
        if session is not None:
            self._seen(holder, address, session)
        elif scope["method"] == "POST" and "/call/" in scope["path"]:
            send = self._session_in_answer(send, holder, address)
        await self.app(scope, receive, send)

    def _session_in_answer(self, send: Send, holder: Any, address: str) -> Send:
        """`send` for a `/call/<api>` request that names no session: Gradio makes its event's id the session
        (every such call a new one), and answers with that id (`{"event_id": ...}`), which is counted here."""
        answer = bytearray()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body" and len(answer) <= MAX_CALL_ANSWER:
                answer.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    with contextlib.suppress(ValueError, AttributeError):  # not Gradio's answer: no event made
                        event = json.loads(answer).get("event_id")
                        if isinstance(event, str):
                            self._seen(holder, address, event)
            await send(message)

        return sending

    def _seen(self, holder: Any, address: str, session: str) -> None:
        previous = self._owner.get(session)
        if previous is not None and previous != address:
            self._owned[previous].pop(session, None)
        self._owner[session] = address
        owned = self._owned.setdefault(address, OrderedDict())
        owned[session] = time.monotonic()
        owned.move_to_end(session)
        while len(owned) > self.limit:
            oldest, _ = owned.popitem(last=False)
            del self._owner[oldest]
            with holder.lock:
                _forget(holder, oldest)

    def _sweep(self, holder: Any) -> None:
        """Stop tracking sessions Gradio no longer holds and that were not seen since the last sweep."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next, since = now + SWEEP_EVERY_S, now - SWEEP_EVERY_S
        for address, owned in list(self._owned.items()):
            for session in [s for s, seen in owned.items() if seen < since and s not in holder.session_data]:
                del owned[session], self._owner[session]
            if not owned:
                del self._owned[address]
