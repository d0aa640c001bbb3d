"""config: the server's settings from the environment and `.env`, and the key a call uses.

Environment variables win over `.env` (python-dotenv's values fill only what is unset), and `os.environ` is
never modified, so the server key is not copied into child processes by us. A missing key is fine at
start-up; a malformed value is not.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .errors import ConfigError, InvalidKey, MissingKey
from .i18n import Msg
from .visitor_settings import DEFAULT_MODEL, MAX_KEY_CHARS

MAX_PASTED_KEY_CHARS = 2 * MAX_KEY_CHARS  # a copy adds a few spaces and invisible characters, never this many

DEFAULT_BASE_URL = "https://api.aimlapi.com/v1"
DEFAULT_FALLBACK_MODEL = "MiniMax-Text-01"  # answers when the API refuses the chosen model as retired or unknown
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_BUDGET = 10.0  # seconds of back-off waiting, in all, before a failure is shown
DEFAULT_CONCURRENCY = 128  # chats streaming at once; I/O-bound, so far above Gradio's default of 1
MAX_CONCURRENCY = 10_000  # also the connection pool's size, which urllib3 fills on the first request
DEFAULT_QUEUE_SIZE = 512  # requests waiting beyond that before new ones are turned away
# A class of 50 behind one NAT at 3 messages a minute each is 150 a minute from one address: 300 leaves twice
# that. Nobody types 10 messages a minute for long; a runaway tab or script does (and a script that rotates its
# session id still meets the per-address rate, the upstream cap and the daily budget).
DEFAULT_RATE_PER_SESSION = 10  # messages a minute from one browser session
DEFAULT_RATE_PER_ADDRESS = 300  # messages a minute from one client address
DEFAULT_REFUSED_PER_ADDRESS = 60  # refused messages a minute from one address before all its messages are refused
# Of MAX_UPSTREAM_CALLS (else CHAT_CONCURRENCY), one client address may hold this part at once, so that one visitor
# never starves the rest, while a class of 50 behind one NAT (64 of the default 128) is still answered at once.
UPSTREAM_SHARE_PER_ADDRESS = 0.5
DEFAULT_MAX_UPSTREAM_PER_SESSION = 3  # replies one chat may have in flight (a browser tab sends one at a time)
DEFAULT_MAX_MESSAGE_CHARS = 100_000
DEFAULT_MAX_HISTORY_MESSAGES = 200  # earlier messages sent upstream at most
DEFAULT_UPDATE_BUDGET = 100.0  # browser updates a second, server-wide, in units of a short chat's update
DEFAULT_CATALOGUE_TTL = 3600.0
DEFAULT_MAX_ATTACHMENT_MB = 10.0
DEFAULT_MAX_PDF_PAGES = 300
DEFAULT_MAX_ATTACHMENTS_PER_MESSAGE = 10
DEFAULT_MAX_MESSAGE_ATTACHMENTS_MB = 25.0
DEFAULT_MAX_REQUEST_IMAGE_MB = 20.0  # image data in one API request, after resizing, history included
DEFAULT_MAX_IMAGES_PER_REQUEST = 10
DEFAULT_ATTACHMENT_TEXT_TTL_DAYS = 7.0
DEFAULT_DATA_DIR = "data"  # relative to the working directory; /data on a Space with persistent storage
SPACES_DATA_DIR = "/data"
DEFAULT_SHARE_TTL_DAYS = 30.0
DEFAULT_SHARE_MAX_KB = 1000.0  # one shared conversation, as stored
DEFAULT_SHARE_PER_HOUR = 60  # shared links one client address may create in a clock hour: a class of 50 each once
DEFAULT_SHARE_STORE_MB = 500.0  # all shared conversations together; beyond it new links are refused
DEFAULT_SHARE_PER_ADDRESS_MB = 25.0  # the part of that one client address may hold, so no one fills it for all
DEFAULT_MAX_REQUEST_MB = 5.0  # about a browser's localStorage quota, where the page keeps saved conversations
DEFAULT_CACHE_CLEAR_MINUTES = 60.0
DEFAULT_LOGIN_MAX_FAILURES = 5
DEFAULT_LOGIN_WINDOW = 60.0  # seconds
DEFAULT_DRAIN_SECONDS = 30.0  # on SIGTERM, how long replies in flight may take to finish
DEFAULT_REPLICAS = 2  # app processes behind HAProxy in deploy/ (python app.py alone is one)
# The edge (web/), issue 20: what one address may make the server keep. A class of 50 behind one NAT sends about
# 150 messages a minute; the page sends each message's history twice and the saved conversations once (~120 KB
# a message mid-lesson), so 60 MB a minute leaves room for long chats; one accepted 4.5 MB value keeps ~5 MB of
# session state, so 60 MB a minute is also what one address can pile up in a minute.
DEFAULT_BODY_MB_PER_MINUTE = 60.0  # request bodies but uploads, per address
DEFAULT_UPLOAD_MB_PER_MINUTE = 60.0  # uploads per address: a dozen students attaching a 5 MB PDF at once
DEFAULT_UPLOAD_STORE_MB = 2000.0  # Gradio's upload folder, all visitors together (emptied every CACHE_CLEAR_MINUTES)
# Of UPLOAD_STORE_MB, one address may upload this part between two clearings, so that no one fills it for everyone
# (at 60 MB a minute one address filled the default in 34 minutes). Files stay up to two periods, so one address
# holds at most half of the folder; 500 MB still lets a class of 50 behind one address upload 10 MB each an hour.
UPLOAD_SHARE_PER_ADDRESS = 0.25
DEFAULT_STATE_SESSIONS = 1000  # sessions whose state Gradio keeps (its default: 10,000); the oldest go first
DEFAULT_SESSION_IDLE_MINUTES = 60.0  # a session unused this long is forgotten
DEFAULT_STATE_SESSIONS_PER_ADDRESS = 200  # of those, one address's: a class of 50 with a few tabs each


@dataclass(frozen=True)
class Settings:
    """Server-wide settings, read once at start-up and never mutated."""

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    fallback_model: str = DEFAULT_FALLBACK_MODEL  # "" turns the fallback off
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_budget: float = DEFAULT_RETRY_BUDGET
    concurrency: int = DEFAULT_CONCURRENCY  # also the size of the upstream connection pool
    queue_size: int = DEFAULT_QUEUE_SIZE
    update_budget: float = DEFAULT_UPDATE_BUDGET
    rate_per_session: int = DEFAULT_RATE_PER_SESSION
    rate_per_address: int = DEFAULT_RATE_PER_ADDRESS
    refused_per_address: int = DEFAULT_REFUSED_PER_ADDRESS
    max_upstream: int = DEFAULT_CONCURRENCY
    max_upstream_per_address: int = int(DEFAULT_CONCURRENCY * UPSTREAM_SHARE_PER_ADDRESS)
    max_upstream_per_session: int = DEFAULT_MAX_UPSTREAM_PER_SESSION
    max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS
    max_history_messages: int = DEFAULT_MAX_HISTORY_MESSAGES
    hide_api: bool = False
    catalogue_ttl: float = DEFAULT_CATALOGUE_TTL
    max_attachment_bytes: int = int(DEFAULT_MAX_ATTACHMENT_MB * 1_000_000)
    max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES
    max_attachments_per_message: int = DEFAULT_MAX_ATTACHMENTS_PER_MESSAGE
    max_message_attachment_bytes: int = int(DEFAULT_MAX_MESSAGE_ATTACHMENTS_MB * 1_000_000)
    max_request_image_bytes: int = int(DEFAULT_MAX_REQUEST_IMAGE_MB * 1_000_000)
    max_images_per_request: int = DEFAULT_MAX_IMAGES_PER_REQUEST
    attachment_text_ttl: float = DEFAULT_ATTACHMENT_TEXT_TTL_DAYS * 86_400
    share: bool = False
    login: tuple[str, str] | None = field(default=None, repr=False)
    on_spaces: bool = False
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    max_request_bytes: int = int(DEFAULT_MAX_REQUEST_MB * 1_000_000)
    cache_clear_minutes: float = DEFAULT_CACHE_CLEAR_MINUTES
    login_max_failures: int = DEFAULT_LOGIN_MAX_FAILURES
    login_window: float = DEFAULT_LOGIN_WINDOW
    offline: bool = False
    trusted_proxy_hops: int = 0
    daily_budget_usd: float = 0.0  # 0 = no budget
    share_links: bool = True
    share_ttl_days: float = DEFAULT_SHARE_TTL_DAYS  # 0 = links never expire
    share_max_bytes: int = int(DEFAULT_SHARE_MAX_KB * 1000)
    share_per_hour: int = DEFAULT_SHARE_PER_HOUR
    share_store_bytes: int = int(DEFAULT_SHARE_STORE_MB * 1_000_000)
    share_address_bytes: int = int(DEFAULT_SHARE_PER_ADDRESS_MB * 1_000_000)
    drain_seconds: float = DEFAULT_DRAIN_SECONDS
    metrics_token: str | None = field(default=None, repr=False)  # /metrics answers 404 without it
    replicas: int = DEFAULT_REPLICAS
    # The edge (web/): what one address may send, and what Gradio may keep or show (issue 20).
    monitoring: bool = False  # Gradio's /monitoring pages
    body_per_minute: int = int(DEFAULT_BODY_MB_PER_MINUTE * 1_000_000)  # 0 = no limit
    upload_per_minute: int = int(DEFAULT_UPLOAD_MB_PER_MINUTE * 1_000_000)  # 0 = no limit
    upload_store_bytes: int = int(DEFAULT_UPLOAD_STORE_MB * 1_000_000)  # 0 = no cap
    upload_address_bytes: int = int(DEFAULT_UPLOAD_STORE_MB * UPLOAD_SHARE_PER_ADDRESS * 1_000_000)  # 0 = no cap
    state_sessions: int = DEFAULT_STATE_SESSIONS
    session_idle: float = DEFAULT_SESSION_IDLE_MINUTES * 60  # seconds; 0 = never
    state_sessions_per_address: int = DEFAULT_STATE_SESSIONS_PER_ADDRESS  # 0 = no cap


def load_settings(environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env") -> Settings:
    """Read settings from `environ` (default `os.environ`) over the values in `dotenv_path`."""
    values: dict[str, str | None] = (
        dict(dotenv_values(dotenv_path)) if dotenv_path and Path(dotenv_path).exists() else {}
    )
    values.update(os.environ if environ is None else environ)
    env = {name: value.strip() for name, value in values.items() if value is not None and value.strip()}
    fallback_default = "" if "CHAT_FALLBACK_MODEL" in values else DEFAULT_FALLBACK_MODEL  # set but empty: off
    concurrency = int(_number(env, "CHAT_CONCURRENCY", DEFAULT_CONCURRENCY, 1, True, MAX_CONCURRENCY))
    max_upstream = _count(env, "MAX_UPSTREAM_CALLS", DEFAULT_CONCURRENCY)
    address_share = max(1, int((max_upstream or concurrency) * UPSTREAM_SHARE_PER_ADDRESS))
    upload_store = _megabytes(env, "UPLOAD_STORE_MB", DEFAULT_UPLOAD_STORE_MB)
    return Settings(
        api_key=_server_key(env.get("AIMLAPI_KEY")),
        base_url=_url(env, "AIMLAPI_BASE_URL", DEFAULT_BASE_URL),
        model=env.get("CHAT_MODEL", DEFAULT_MODEL),
        fallback_model=env.get("CHAT_FALLBACK_MODEL", fallback_default),
        connect_timeout=_number(env, "AIMLAPI_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        read_timeout=_number(env, "AIMLAPI_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        max_retries=int(_number(env, "AIMLAPI_MAX_RETRIES", DEFAULT_MAX_RETRIES, minimum=0, whole=True)),
        retry_budget=_number(env, "AIMLAPI_RETRY_BUDGET", DEFAULT_RETRY_BUDGET, minimum=0),
        concurrency=concurrency,
        queue_size=int(_number(env, "QUEUE_MAX_SIZE", DEFAULT_QUEUE_SIZE, minimum=1, whole=True)),
        update_budget=_number(env, "STREAM_UPDATE_BUDGET", DEFAULT_UPDATE_BUDGET),
        rate_per_session=_count(env, "RATE_LIMIT_PER_SESSION", DEFAULT_RATE_PER_SESSION),
        rate_per_address=_count(env, "RATE_LIMIT_PER_ADDRESS", DEFAULT_RATE_PER_ADDRESS),
        refused_per_address=_count(env, "RATE_LIMIT_REFUSED_PER_ADDRESS", DEFAULT_REFUSED_PER_ADDRESS),
        max_upstream=max_upstream,
        max_upstream_per_address=_count(env, "MAX_UPSTREAM_PER_ADDRESS", address_share),
        max_upstream_per_session=_count(env, "MAX_UPSTREAM_PER_SESSION", DEFAULT_MAX_UPSTREAM_PER_SESSION),
        max_message_chars=_count(env, "MAX_MESSAGE_CHARS", DEFAULT_MAX_MESSAGE_CHARS),
        max_history_messages=_count(env, "MAX_HISTORY_MESSAGES", DEFAULT_MAX_HISTORY_MESSAGES),
        hide_api=_flag(env, "HIDE_API"),
        catalogue_ttl=_number(env, "CATALOGUE_TTL", DEFAULT_CATALOGUE_TTL, minimum=0),
        max_attachment_bytes=int(_number(env, "MAX_ATTACHMENT_MB", DEFAULT_MAX_ATTACHMENT_MB) * 1_000_000),
        max_pdf_pages=int(_number(env, "MAX_PDF_PAGES", DEFAULT_MAX_PDF_PAGES, minimum=1, whole=True)),
        max_attachments_per_message=_count(env, "MAX_ATTACHMENTS_PER_MESSAGE", DEFAULT_MAX_ATTACHMENTS_PER_MESSAGE),
        max_message_attachment_bytes=int(
            _number(env, "MAX_MESSAGE_ATTACHMENTS_MB", DEFAULT_MAX_MESSAGE_ATTACHMENTS_MB, minimum=0) * 1_000_000
        ),
        max_request_image_bytes=int(
            _number(env, "MAX_REQUEST_IMAGE_MB", DEFAULT_MAX_REQUEST_IMAGE_MB, minimum=0) * 1_000_000
        ),
        max_images_per_request=_count(env, "MAX_IMAGES_PER_REQUEST", DEFAULT_MAX_IMAGES_PER_REQUEST),
        attachment_text_ttl=_number(env, "ATTACHMENT_TEXT_TTL_DAYS", DEFAULT_ATTACHMENT_TEXT_TTL_DAYS) * 86_400,
        share=_flag(env, "GRADIO_SHARE"),
        login=_login(env),
        on_spaces="SPACE_ID" in env,
        data_dir=Path(env.get("DATA_DIR") or _default_data_dir("SPACE_ID" in env)),
        redis_url=_redis_url(env),
        max_request_bytes=int(_number(env, "MAX_REQUEST_MB", DEFAULT_MAX_REQUEST_MB) * 1_000_000),
        cache_clear_minutes=_number(env, "CACHE_CLEAR_MINUTES", DEFAULT_CACHE_CLEAR_MINUTES),
        login_max_failures=_count(env, "LOGIN_MAX_FAILURES", DEFAULT_LOGIN_MAX_FAILURES),
        login_window=_number(env, "LOGIN_WINDOW_SECONDS", DEFAULT_LOGIN_WINDOW),
        offline=_flag(env, "OFFLINE"),
        trusted_proxy_hops=int(
            _number(env, "TRUSTED_PROXY_HOPS", 1 if "SPACE_ID" in env else 0, minimum=0, whole=True)
        ),
        daily_budget_usd=_number(env, "DAILY_BUDGET_USD", 0.0, minimum=0),
        share_links=env.get("SHARE", "1").lower() not in ("0", "false", "no"),
        share_ttl_days=_number(env, "SHARE_TTL_DAYS", DEFAULT_SHARE_TTL_DAYS, minimum=0),
        share_max_bytes=int(_number(env, "SHARE_MAX_KB", DEFAULT_SHARE_MAX_KB) * 1000),
        share_per_hour=_count(env, "SHARE_PER_HOUR", DEFAULT_SHARE_PER_HOUR),
        share_store_bytes=int(_number(env, "SHARE_STORE_MB", DEFAULT_SHARE_STORE_MB, minimum=0) * 1_000_000),
        share_address_bytes=int(_number(env, "SHARE_PER_ADDRESS_MB", DEFAULT_SHARE_PER_ADDRESS_MB, minimum=0) * 1e6),
        drain_seconds=_number(env, "DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS, minimum=0),
        metrics_token=env.get("METRICS_TOKEN"),
        replicas=int(_number(env, "REPLICAS", DEFAULT_REPLICAS, minimum=1, whole=True)),
        # The edge (web/), issue 20.
        monitoring=_flag(env, "MONITORING"),
        body_per_minute=_megabytes(env, "BODY_MB_PER_MINUTE", DEFAULT_BODY_MB_PER_MINUTE),
        upload_per_minute=_megabytes(env, "UPLOAD_MB_PER_MINUTE", DEFAULT_UPLOAD_MB_PER_MINUTE),
        upload_store_bytes=upload_store,
        upload_address_bytes=_megabytes(env, "UPLOAD_PER_ADDRESS_MB", upload_store * UPLOAD_SHARE_PER_ADDRESS / 1e6),
        state_sessions=int(_number(env, "STATE_SESSIONS", DEFAULT_STATE_SESSIONS, minimum=1, whole=True)),
        session_idle=_number(env, "SESSION_IDLE_MINUTES", DEFAULT_SESSION_IDLE_MINUTES, minimum=0) * 60,
        state_sessions_per_address=int(
            _number(env, "STATE_SESSIONS_PER_ADDRESS", DEFAULT_STATE_SESSIONS_PER_ADDRESS, minimum=0, whole=True)
        ),
    )


def _default_data_dir(on_spaces: bool) -> str:
    """`/data` when Spaces mounted persistent storage there (it exists and is writable), else `./data`."""
    persistent = on_spaces and os.path.isdir(SPACES_DATA_DIR) and os.access(SPACES_DATA_DIR, os.W_OK)
    return SPACES_DATA_DIR if persistent else DEFAULT_DATA_DIR


def _redis_url(env: Mapping[str, str]) -> str | None:
    """The Redis URL, checked; the message never echoes it, since it may hold a password."""
    raw = env.get("REDIS_URL")
    parts = urlsplit(raw or "")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        valid = parts.scheme == "unix" or (parts.scheme in ("redis", "rediss") and bool(parts.hostname))
    except ValueError:
        valid = False
    if raw and not valid:
        raise ConfigError("REDIS_URL must look like redis://host:6379/0 (or rediss://, unix:///path/redis.sock).")
    return raw


def _login(env: Mapping[str, str]) -> tuple[str, str] | None:
    user, password = env.get("APP_USERNAME"), env.get("APP_PASSWORD")
    if bool(user) != bool(password):
        raise ConfigError("Set both APP_USERNAME and APP_PASSWORD to require a login, or neither.")
    return (user, password) if user and password else None


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    minimum: float = 0.001,
    whole: bool = False,
    maximum: float = math.inf,
) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}.") from None
    if not math.isfinite(value) or not minimum <= value <= maximum or (whole and not value.is_integer()):
        kind = "a whole number" if whole else "a number"
        bounds = f"between {minimum:g} and {maximum:g}" if maximum < math.inf else f"of at least {minimum:g}"
        raise ConfigError(f"{name} must be {kind} {bounds}, got {raw!r}.")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 0, where 0 switches the limit off."""
    return int(_number(env, name, default, minimum=0, whole=True))


def _megabytes(env: Mapping[str, str], name: str, default: float) -> int:
    """A size in MB as bytes; 0 switches the bound off."""
    return int(_number(env, name, default, minimum=0) * 1_000_000)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").lower() in ("1", "true", "yes")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, default)
    try:
        parts = urlsplit(raw)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # an unclosed "[" of an IPv6 address, a port out of range
        usable = False
    if not usable:
        raise ConfigError(f"{name} must be an http(s) URL such as {default}, got {raw!r}.")
    return raw.rstrip("/")


def resolve_key(user_key: str | None, settings: Settings) -> str:
    """The key for one call: the visitor's own if given, else the server's; `MissingKey` says how to set one,
    `InvalidKey` what is wrong with a pasted one (it would otherwise fail deep in http.client, every time)."""
    problem, key = check_key(user_key or "")
    if problem:
        raise InvalidKey(key="key_pasted", params={"problem": problem})
    key = key or settings.api_key or ""
    if not key:
        raise MissingKey(key="no_key")
    return key


def check_key(raw: str) -> tuple[Msg | None, str]:
    """(what is wrong, or None) and the key without the spaces and invisible characters that copying adds.

    A key is visible ASCII: anything else can't be sent in an HTTP header, so it is refused with its name. A
    field far longer than any key is refused by its length alone, before any character is looked at: a request
    body can carry megabytes there, and looking up each one cost a second of CPU.
    """
    if len(raw) > MAX_PASTED_KEY_CHARS:
        return Msg("key_too_long", {"length": f"{len(raw):,}", "paste": Msg("paste_again")}), raw
    key = "".join(char for char in raw if unicodedata.category(char) != "Cf").strip()  # Cf: zero-width, BOM
    if len(key) > MAX_KEY_CHARS:
        return Msg("key_too_long", {"length": f"{len(key):,}", "paste": Msg("paste_again")}), key
    for position, char in enumerate(key, 1):
        if not "!" <= char <= "~":
            name = unicodedata.name(char, f"U+{ord(char):04X}").lower()
            shown = Msg("key_space") if char.isspace() else Msg("key_char", {"char": char, "name": name})
            return Msg("key_bad_char", {"shown": shown, "position": position, "paste": Msg("paste_again")}), key
    return None, key


def _server_key(raw: str | None) -> str | None:
    problem, key = check_key(raw or "")
    if problem:
        raise ConfigError(f"AIMLAPI_KEY {problem.render()}")  # read by the host, so in English
    return key or None
