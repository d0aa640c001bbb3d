"""stops: a Stop pressed before the page knew which event to stop still stops it.

The page shows Stop as soon as a message is sent. On a slow network a visitor may press it before the answer to the
message's `queue/join` (the event's id) has arrived. Gradio's page then sends a cancel that names no event, which
Gradio refuses (422), and the reply streams on into a page that says it stopped, and is billed.

The cancel and the join race each other to the server. Each join's answer (the event's id) is noted for its
session and step (`session_hash`, `fn_index`, as the guard read them). A cancel naming no event then stops that
step's event if it is still queued or running; if not (its join has not arrived yet), the stop is kept for KEPT_S,
and the join that follows is passed on to Gradio and its event stopped once Gradio has answered with its id. Either
way the event is stopped through Gradio's own `/cancel`, as if the page had sent it a moment later. At most
MAX_KEPT of each are kept (the oldest forgotten first), since a visitor chooses the session names.

Runs inside the guard (which leaves a JSON body's parsed value in the scope) and on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict
from typing import Any

from .asgi import JSON_KEY, ASGIApp, Message, Receive, Scope, Send, answer

KEPT_S = 30.0  # a join slower than this after its Stop is not paired with it
MAX_KEPT = 10_000
MAX_JOIN_ANSWER = 4096  # bytes of a join's answer read for its event id ({"event_id": "<32 hex>"})


class EarlyStops:
    """Pairs a cancel that names no event with its session and step's event, whichever reaches the server first."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._kept: OrderedDict[tuple[str, int], float] = OrderedDict()  # stops waiting for their join
        self._answered: OrderedDict[tuple[str, int], str] = OrderedDict()  # each step's latest event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = scope.get(JSON_KEY)
        step = _step(body)
        if scope["type"] != "http" or scope["method"] != "POST" or step is None:
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.endswith("/gradio_api/cancel") and isinstance(body, dict) and body.get("event_id") is None:
            event = self._answered.pop(step, None)
            if event is not None and _in_progress(scope, step, event):
                await self._cancel(scope, step, event)
            else:
                self._remember(self._kept, step, time.monotonic())
            return await answer(send, 200, b'{"success": true}', b"application/json")
        if not path.endswith("/gradio_api/queue/join"):
            return await self.app(scope, receive, send)
        joined = bytearray()  # the join's answer, as far as its event id

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.body" and len(joined) <= MAX_JOIN_ANSWER:
                joined.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, sending)
        with contextlib.suppress(ValueError, AttributeError):  # not an event's id: nothing was queued
            event = json.loads(joined).get("event_id")
            if isinstance(event, str):
                if self._taken(step):
                    await self._cancel(scope, step, event)
                else:
                    self._remember(self._answered, step, event)
        return None

    @staticmethod
    def _remember(kept: OrderedDict[tuple[str, int], Any], step: tuple[str, int], value: Any) -> None:
        kept[step] = value
        kept.move_to_end(step)
        while len(kept) > MAX_KEPT:
            kept.popitem(last=False)

    def _taken(self, step: tuple[str, int]) -> bool:
        """Whether a stop was kept for `step` within KEPT_S; it is used up either way."""
        kept = self._kept.pop(step, None)
        return kept is not None and time.monotonic() - kept <= KEPT_S

    async def _cancel(self, scope: Scope, step: tuple[str, int], event: str) -> None:
        """Gradio's `/cancel` for `event`, called in process with the scope of the request that completed the pair
        (the visitor's address and cookies)."""
        body = json.dumps({"session_hash": step[0], "fn_index": step[1], "event_id": event}).encode()
        path = scope["path"].rpartition("/gradio_api/")[0] + "/gradio_api/cancel"  # from a join's or a cancel's
        cancel = {**scope, "path": path, "raw_path": path.encode(), "query_string": b"", JSON_KEY: None}
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def discard(message: Message) -> None:
            return None

        await self.app(cancel, receive, discard)


def _in_progress(scope: Scope, step: tuple[str, int], event: str) -> bool:
    """Whether Gradio still holds `event` of `step` in its queue or runs it (its task is named after both)."""
    queue = scope["app"].get_blocks()._queue
    running = f"{step[0]}_{step[1]}<gradio-sep>{event}"
    return event in queue.event_ids_to_events or any(task.get_name() == running for task in asyncio.all_tasks())


def _step(body: object) -> tuple[str, int] | None:
    """The session and step a cancel or join names, if it names both well."""
    if not isinstance(body, dict):
        return None
    session, fn = body.get("session_hash"), body.get("fn_index")
    if isinstance(session, str) and isinstance(fn, int) and not isinstance(fn, bool):
        return session, fn
    return None
