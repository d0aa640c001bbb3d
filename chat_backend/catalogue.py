"""catalogue: which chat models exist, their context windows, and what to suggest for a retired one.

The live list comes from `GET {base}/models` (no key needed), cached for a TTL and refreshed in a background
thread so that nobody waits for it; until it arrives, or when it fails, the MiniMax models from the API
notes stand in. Facts the live list does not carry (temperature range, unsupported parameters) come from
the static table.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import requests

from .i18n import Msg
from .visitor_settings import refused_by

log = logging.getLogger(__name__)

CHAT_MODEL_TYPE = "openai/chat-completions"
UNKNOWN_CONTEXT_LENGTH = 32_000  # assumed for a model the catalogue does not list
CATALOGUE_TIMEOUT = (2.0, 3.0)


@dataclass(frozen=True)
class ModelInfo:
    """One chat model as this app needs to know it."""

    id: str
    name: str = ""
    context_length: int = UNKNOWN_CONTEXT_LENGTH
    aliases: tuple[str, ...] = ()
    developer: str = ""
    temperature_max: float = 2.0
    unsupported: frozenset[str] = frozenset()
    deprecated: bool = False
    listed: bool = True  # False for a name the catalogue does not know
    vision: bool = False  # accepts image parts: the vendor schema has them, or the live list declares it

    @property
    def is_minimax(self) -> bool:
        return self.developer.lower() == "minimax" or "minimax" in self.id.lower() or self.id.startswith("abab")

    def matches(self, name: str) -> bool:
        return name == self.id or name in self.aliases


def _minimax(model_id: str, context: int, temperature_max: float = 2.0, **extra: Any) -> ModelInfo:
    # the visitor settings table knows which schema lacks which field
    facts = {"developer": "MiniMax", "temperature_max": temperature_max, "unsupported": refused_by(model_id), **extra}
    return ModelInfo(model_id, model_id, context, **facts)


# From ../shared/api/NOTES.md. MiniMax-Text-01's request schema has no frequency_penalty; both request schemas
# have image parts, the other models publish none.
KNOWN_MODELS: tuple[ModelInfo, ...] = (
    _minimax("abab6.5s-chat", 245_000, deprecated=True, vision=True),
    _minimax("MiniMax-Text-01", 1_000_000, 1.0, vision=True),
    _minimax("minimax/m1", 1_000_000, 1.0),
    _minimax("minimax/m2", 200_000, 1.0),
    _minimax("minimax/m2-her", 200_000, 1.0),
    _minimax("minimax/m2-1", 204_800),
    _minimax("minimax/m2-1-highspeed", 204_800),
    _minimax("minimax/m2-5-20260218", 204_800),
    _minimax("minimax/m2-5-highspeed-20260218", 204_800),
    _minimax("minimax/m2-7-20260402", 204_800),
    _minimax("minimax/m2-7-highspeed", 204_800),
    _minimax("minimax/minimax-m3", 1_000_000),
)
_KNOWN_BY_ID = {model.id: model for model in KNOWN_MODELS}


def parse_models(payload: Any) -> list[ModelInfo]:
    """Chat models from a `/models` response body, with static facts merged in; a malformed entry is skipped
    (and logged), the rest kept. Never raises, whatever the body holds."""
    items = payload.get("data") if isinstance(payload, dict) else None
    models = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") != CHAT_MODEL_TYPE or not isinstance(item.get("id"), str):
            continue
        if model := _parse_model(item):
            models.append(model)
        else:
            log.warning("model catalogue: skipped the malformed entry for %.100r", item["id"])
    return models


def _parse_model(item: dict[str, Any]) -> ModelInfo | None:
    """One chat model, or None when a field has the wrong shape (aliases not a list of strings, a context
    length that is not a positive whole number, a name that is not text)."""
    info = item.get("info") if item.get("info") is not None else {}
    aliases = item.get("aliases") if item.get("aliases") is not None else []
    if not isinstance(info, dict) or not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        return None
    context, name, developer = info.get("contextLength"), info.get("name"), info.get("developer")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context <= 0):
        return None
    if not all(isinstance(text, str) for text in (name, developer) if text is not None):
        return None
    known = _KNOWN_BY_ID.get(item["id"], ModelInfo(item["id"]))
    return replace(
        known,
        name=name or known.name or item["id"],
        developer=developer or known.developer,
        context_length=context or known.context_length,
        aliases=tuple(aliases),
        deprecated=False,  # the live list only holds models that can be called
        vision=known.vision or _declares_vision(item),
    )


def _declares_vision(item: dict[str, Any]) -> bool:
    """Whether a `/models` item lists vision among its capabilities or images among its inputs."""
    capabilities, modalities = item.get("capabilities"), item.get("modalities")
    inputs = modalities.get("input") if isinstance(modalities, dict) else None
    return (isinstance(capabilities, list) and "vision" in capabilities) or (
        isinstance(inputs, list) and "image" in inputs
    )


def minimax_first(models: list[ModelInfo]) -> list[ModelInfo]:
    """MiniMax models first (in the given order), then the rest by id."""
    return [m for m in models if m.is_minimax] + sorted((m for m in models if not m.is_minimax), key=lambda m: m.id)


class Catalogue:
    """The model list behind a TTL; `models()` never blocks on the network."""

    def __init__(self, session: requests.Session, base_url: str, ttl: float) -> None:
        self._session = session
        self._url = f"{base_url}/models"
        self._ttl = ttl
        self._live: list[ModelInfo] | None = None
        self._fetched_at = 0.0
        self._etag: str | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def models(self) -> list[ModelInfo]:
        """Chat models, MiniMax first: the live list if fetched, else the static fallback. Starts a refresh
        in the background when the cache is stale."""
        if self._stale():
            self.refresh_in_background()
        live = self._live
        return minimax_first(live if live else [m for m in KNOWN_MODELS if not m.deprecated])

    def refresh(self) -> bool:
        """Fetch the list now (short timeouts); keep the old one on failure. Returns whether it succeeded."""
        headers = {"If-None-Match": self._etag} if self._etag and self._live else {}
        try:
            response = self._session.get(
                self._url, params={"type": CHAT_MODEL_TYPE}, headers=headers, timeout=CATALOGUE_TIMEOUT
            )
            if response.status_code == 304:
                models = self._live
            else:
                response.raise_for_status()
                models = parse_models(response.json())
        except (requests.RequestException, ValueError) as exc:
            log.warning("model catalogue unavailable, using the built-in list: %s", type(exc).__name__)
            return False
        if not models:
            log.warning("model catalogue listed no chat models; using the built-in list")
            return False
        with self._lock:
            self._live, self._fetched_at, self._etag = models, time.monotonic(), response.headers.get("ETag")
        return True

    def refresh_in_background(self) -> None:
        """Start one refresh thread unless one is already running."""
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True
        threading.Thread(target=self._refresh_then_clear, name="catalogue-refresh", daemon=True).start()

    def _refresh_then_clear(self) -> None:
        refreshed = False
        try:
            refreshed = self.refresh()
        except Exception:  # a bug must not turn every page load into another request and traceback
            log.exception("model catalogue refresh failed")
        finally:
            if not refreshed:
                self._fetched_at = time.monotonic()  # failed: wait a TTL before asking again
            self._refreshing = False

    def _stale(self) -> bool:
        return not self._fetched_at or time.monotonic() - self._fetched_at > self._ttl

    def info(self, name: str) -> ModelInfo:
        """What is known of `name` (id or alias); an unlisted name gets `listed=False` and an assumed window."""
        for model in (self._live or []) + list(KNOWN_MODELS):
            if model.matches(name):
                return model
        return ModelInfo(name, name, listed=False)

    def offers(self, name: str) -> bool | None:
        """Whether the live list holds `name` (id or alias); None until that list has arrived."""
        live = self._live
        return None if live is None else any(model.matches(name) for model in live)

    def is_available(self, name: str) -> bool:
        info = self.info(name)
        return info.listed and not info.deprecated

    def unavailable_message(self, name: str) -> Msg:
        """Tells the user that `name` can't be used and which MiniMax models can."""
        reason = Msg("model_retired" if self.info(name).deprecated else "model_not_offered")
        names = ", ".join(m.id for m in self.models() if m.is_minimax and not m.deprecated)
        return Msg("model_unavailable", {"name": name, "reason": reason, "names": names})
