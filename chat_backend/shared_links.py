"""shared_links: read-only snapshots of a conversation, stored under a random id for a `/share/<id>` link.

A snapshot holds what the person saw: their messages, the replies, the model's thinking and the app's notices
(both shown folded, the thinking apart from the answer it preceded). It
never holds a key (the server's and the visitor's are replaced wherever they appear), the system prompt
unless the person ticked the box, or any attachment's bytes: attachments are listed by name as left out.
Snapshots live in the Store, so any replica can serve any link; none is kept in process memory. The delete
token goes back to the sharer's browser only; the snapshot keeps its SHA-256. A snapshot is stored as its page
will show it (`Shares`' `to_page`, the web layer's renderer): the costly rendering is paid once, by the sharer,
within the sharer's limits, and never by a visit, which no limit counts.

Stored links are other people's: a full store refuses a new link and never removes one. The limits are keyed by
the client address (`chat_backend.quotas.visitor_address`), never by the session id a client chooses: links an
address may make per clock hour, and the part of the store its links may hold (the address is kept only as a
SHA-256 digest beside each link).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .errors import ChatError, hide
from .i18n import DEFAULT, count_of, t
from .messages import describe_content, is_notice, is_thought
from .store import Store, StoreFull, StoreUnavailable

log = logging.getLogger(__name__)
NAMESPACE = "share"
RATE_NAMESPACE = "share-rate"
ID_BYTES = 18  # 144 bits: links can be neither guessed nor enumerated
TOKEN_BYTES = 32
ID_PATTERN = r"[A-Za-z0-9_-]{24}"
TITLE_CHARS = 80
REMEMBERED_LINKS = 50  # links one browser keeps delete tokens for
HOUR = 3600.0
DAY = 86400.0
Snapshot = dict[str, Any]  # a conversation's stored form: plain JSON values


class ShareRefused(ChatError):
    """A share that was not made; `user_message` says why and what to do."""

    title = "Not shared"


@dataclass(frozen=True)
class Shared:
    """A link just made: the id for the URL, the token that deletes it, and what was left out."""

    id: str
    delete_token: str = field(repr=False)
    title: str
    left_out: tuple[str, ...]
    expires: float | None

    def summary(self, lang: str = DEFAULT) -> str:
        """What a sharer should know about the link, in one or two sentences, in the sharer's language."""
        expires = left_out = ""
        if self.expires is not None:
            date = time.strftime(t("share_date_format", lang), time.gmtime(self.expires))
            expires = t("share_expires", lang, date=date)
        if self.left_out:
            left_out = t("share_left_out", lang, names=", ".join(self.left_out))
        return t("share_summary", lang, expires=expires, left_out=left_out)


def build_snapshot(
    history: Sequence[Mapping[str, Any]],
    *,
    model: str,
    system_prompt: str = "",
    hidden: Iterable[str | None] = (),
    now: float,
) -> Snapshot:
    """A conversation as plain text records (`Shares`' `to_page` makes its stored form), with `hidden` strings
    replaced everywhere.

    Notices and thoughts keep their title, so the page can fold them as the chat does; attachments keep only
    their name.
    """
    secrets = list(hidden)

    def clean(text: str) -> str:
        return hide(text, *secrets)

    messages, left_out = [], []
    for message in history:
        role = message.get("role")
        if role not in ("user", "assistant"):
            continue
        text, files = describe_content(message.get("content"))
        record: dict[str, Any] = {"role": role, "text": clean(text)}
        for kind, found in (("notice", is_notice(message)), ("thought", is_thought(message))):
            if found:
                record[kind] = clean(str((message.get("metadata") or {}).get("title") or kind.title()))
        if files:
            record["files"] = [clean(name) for name in files]
            left_out += record["files"]
        if text or files:
            messages.append(record)
    first = next((m["text"] for m in messages if m["role"] == "user" and m["text"]), "Conversation")
    title = " ".join(first.split())
    return {
        "version": 1,
        "created": now,
        "model": clean(model),
        "title": title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…",
        "system_prompt": clean(system_prompt.strip()) or None,
        "messages": messages,
        "left_out": left_out,
    }


class Shares:
    """Create, load and delete shared snapshots in a Store, within the limits in Settings; `to_page` turns a
    snapshot into the form stored (its texts as the page's HTML)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        *,
        to_page: Callable[[Snapshot], Snapshot],
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._to_page = to_page

    def create(
        self,
        history: Sequence[Mapping[str, Any]],
        *,
        model: str,
        system_prompt: str = "",
        address: str,
        hidden: Iterable[str | None] = (),
    ) -> Shared:
        """Store a snapshot for a visitor at client `address`; return its link's id and delete token, or raise
        `ShareRefused` saying why not. A link refused for lack of room does not count against the hour, nor one
        whose text alone is over the size limit; one whose page is, does (its rendering was paid for)."""
        settings, now = self._settings, self._clock()
        snapshot = build_snapshot(history, model=model, system_prompt=system_prompt, hidden=hidden, now=now)
        if not any(message["role"] == "user" for message in snapshot["messages"]):
            raise ShareRefused(key="share_nothing")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        ttl = settings.share_ttl_days * DAY if settings.share_ttl_days > 0 else None
        snapshot["expires"] = now + ttl if ttl else None
        snapshot["delete_hash"] = _digest(token)
        self._encoded(snapshot)  # the text must fit before anything is counted or rendered
        share_id = secrets.token_urlsafe(ID_BYTES)
        try:
            self._count(address, now, 1)
            data = self._encoded(self._to_page(snapshot))
            try:
                self._store.put_capped(
                    NAMESPACE,
                    share_id,
                    data,
                    owner=_digest(address),
                    max_bytes=settings.share_store_bytes,
                    max_owner_bytes=settings.share_address_bytes,
                    ttl=ttl,
                )
            except StoreFull as full:
                with contextlib.suppress(StoreUnavailable):
                    self._count(address, now, -1)
                limit = {"limit": _size(settings.share_address_bytes)}
                key, params = ("share_address_full", limit) if full.owner_only else ("share_store_full", {})
                raise ShareRefused(key=key, params=params) from None
        except StoreUnavailable as error:
            log.warning("share not stored: %s", error)
            raise ShareRefused(key="share_unavailable", detail=str(error)) from error
        return Shared(share_id, token, snapshot["title"], tuple(snapshot["left_out"]), snapshot["expires"])

    def _encoded(self, snapshot: Snapshot) -> bytes:
        """The snapshot's stored bytes, or `ShareRefused` when they are over SHARE_MAX_KB."""
        data = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()
        limit = self._settings.share_max_bytes
        if len(data) > limit:
            raise ShareRefused(key="share_too_big", params={"size": _size(len(data)), "limit": _size(limit)})
        return data

    def _count(self, address: str, now: float, step: int) -> None:
        """One more (`step` 1) or one fewer (-1) share from this address in this clock hour, refused beyond the
        limit."""
        limit = self._settings.share_per_hour
        if limit <= 0:
            return
        hour = math.floor(now / HOUR)
        if self._store.add(RATE_NAMESPACE, f"{address}:{hour}", step, ttl=HOUR) > limit and step > 0:
            minutes = math.ceil(((hour + 1) * HOUR - now) / 60)
            raise ShareRefused(
                key="share_too_often",
                params={"count": count_of(limit, "conversations"), "wait": count_of(minutes, "minutes")},
            )

    def load(self, share_id: str) -> Snapshot | None:
        """The snapshot behind a link, or None if it never existed, expired or was deleted.

        `StoreUnavailable` propagates: the page says "try later" rather than "not found".
        """
        raw = self._store.get(NAMESPACE, share_id)
        try:
            snapshot = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(snapshot, dict) or (snapshot.get("expires") or math.inf) <= self._clock():
            return None
        return snapshot

    def delete(self, share_id: str, token: str) -> bool:
        """Delete a link if `token` is its delete token; False if it is wrong or the link is already gone."""
        snapshot = self.load(share_id)
        if snapshot is None or not hmac.compare_digest(str(snapshot.get("delete_hash")), _digest(token)):
            return False
        return self._store.delete(NAMESPACE, share_id)

    def delete_own(
        self, links: Mapping[str, Any] | None, share_id: str, lang: str = DEFAULT
    ) -> tuple[dict[str, Any], str]:
        """Delete one of this browser's links: the links left, and a sentence saying what happened."""
        token = str(((links or {}).get(share_id) or {}).get("token") or "")
        try:
            deleted = bool(token) and self.delete(share_id, token)
        except StoreUnavailable:
            return dict(links or {}), t("share_delete_unavailable", lang)
        return forget(links, share_id), t("share_deleted" if deleted else "share_already_gone", lang)


def remember(links: Mapping[str, Any] | None, shared: Shared) -> dict[str, Any]:
    """The browser's own links (id → delete token and title), newest first, with `shared` added."""
    older = [(key, value) for key, value in (links or {}).items() if key != shared.id]
    return dict([(shared.id, {"token": shared.delete_token, "title": shared.title}), *older][:REMEMBERED_LINKS])


def forget(links: Mapping[str, Any] | None, share_id: str) -> dict[str, Any]:
    return {key: value for key, value in (links or {}).items() if key != share_id}


def link_choices(links: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, id) for a list of the browser's links; the id's start tells apart two chats of one title."""
    items = (links or {}).items()
    return [(f"{(value or {}).get('title') or 'Conversation'} · {key[:6]}…", key) for key, value in items]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{math.ceil(count / 1000)} KB"
