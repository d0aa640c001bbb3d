"""errors: the one exception hierarchy of chat_backend, each class carrying a message for the user.

`ChatError.user_message` is the only text a UI shows: what happened and what to do. `str(err)` adds the
status and a short developer detail; neither ever contains a key (see `redact`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .i18n import Msg, t

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(r"(?i)((?:api[_-]?key|authorization|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+"),
)
REDACTED = "[redacted]"
MIN_SECRET_CHARS = 16  # no API key is shorter; a shorter "key" (the offline stand-in's, a pasted "abc") is a word
FRAGMENT = 8  # this many characters of a key in a row are hidden too: a key split in two is two such pieces
MAX_VENDOR_MESSAGE = 300  # characters of the API's own error text quoted to the user
KEPT = Msg("kept")  # appended to a failure notice when part of the reply arrived


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with every given secret, any long piece of one (`FRAGMENT`), and anything shaped like a
    bearer token replaced.

    Error bodies from proxies sometimes echo request headers back, so everything that may reach a user or a
    log goes through here first. Only strings that can be keys are replaced (see `can_be_key`).
    """
    text = hide(text, *secrets)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


def hide(text: str, *secrets: str | None) -> str:
    """Return `text` with every given secret, and any long piece of one (`FRAGMENT`), replaced."""
    for secret in secrets:
        if secret and can_be_key(secret):
            text = _hide(text, secret, final=True)[0]
    return text


def can_be_key(secret: str) -> bool:
    """Whether `secret` is long enough to be a key: shorter strings are words that replies legitimately contain."""
    return len(secret) >= MIN_SECRET_CHARS


def _hide(text: str, secret: str, final: bool) -> tuple[str, str]:
    """`text` with every run of `FRAGMENT` or more characters that occurs in `secret` replaced, and the tail to
    hold back: unless `final`, a run that reaches the end may grow with the next piece, so it is not shown yet.

    Pieces, not only the whole key: a key split between the thinking and the answer, or around a tag, is two
    pieces, each hidden where it is shown. A run shorter than `FRAGMENT` is text (and at most a few characters
    of a key)."""
    shown: list[str] = []
    plain = start = 0  # `text[plain:start]` is shown as it is; a run of the secret begins at `start`, or none
    while start < len(text):
        end = start
        while end < len(text) and text[start : end + 1] in secret:
            end += 1
        if end == len(text) and end > start and not final:
            return "".join([*shown, text[plain:start]]), text[start:]
        if end - start >= FRAGMENT:
            shown += [text[plain:start], REDACTED]
            plain = start = end
        else:
            start += 1
    return "".join([*shown, text[plain:]]), ""


class StreamRedactor:
    """A reply's pieces in, the same text out with `secret` replaced (see `_hide`), for a model or gateway that
    repeats the key.

    A tail that could be part of the secret is held back until the next piece (or the end) settles it, so no
    update ever carries part of a key that arrives split across pieces.
    """

    def __init__(self, secret: str | None) -> None:
        self.secret = secret if secret and can_be_key(secret) else ""
        self._shown: list[str] = []
        self._held = ""

    @property
    def shown(self) -> str:
        """Everything let out so far."""
        return "".join(self._shown)

    def add(self, piece: str) -> str:
        """The part of the text, up to and including `piece`, that can be shown now (may be empty)."""
        return self._let_out(self._held + piece, final=False)

    def release(self) -> str:
        """At the end of the reply: the held-back tail, hidden if it turned out to be part of the secret."""
        return self._let_out(self._held, final=True)

    def _let_out(self, text: str, final: bool) -> str:
        out, self._held = _hide(text, self.secret, final) if self.secret else (text, "")
        self._shown.append(out)
        return out


class ChatError(Exception):
    """Anything that stops a reply. Not retried unless a subclass says so."""

    title = "Something went wrong"  # a short headline for the notice; user_message says the rest
    retryable = False

    def __init__(
        self,
        user_message: str | None = None,
        *,
        status: int | None = None,
        request_id: str | None = None,
        detail: str = "",
        key: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.key = key  # a chat_backend.i18n message key: the notice is shown in the visitor's language
        self.params = dict(params or {})
        if user_message is None:  # the English lives in i18n.EN only; logs and str(err) use it
            user_message = t(key, "en", **self.params) if key else self.title
        self.user_message = user_message
        self.status = status
        self.request_id = request_id
        self.detail = detail
        super().__init__(user_message)

    def message(self, lang: str = "en") -> str:
        """`user_message` in the visitor's language (as it was given, for an error without a key)."""
        return t(self.key, lang, **self.params) if self.key else self.user_message

    def __str__(self) -> str:
        parts = [self.user_message]
        if self.status is not None:
            parts.append(f"(HTTP {self.status})")
        if self.detail:
            parts.append(f"[{self.detail}]")
        return " ".join(parts)


class ConfigError(ChatError, ValueError):
    """A bad setting in the environment or `.env`; stops start-up, names the variable."""

    title = "Configuration problem"


class MissingKey(ChatError):
    """No API key at all: the user is told the three ways to set one."""

    title = "No API key"


class InvalidKey(ChatError, ValueError):
    """A pasted key with a character no key has (a typographic dash, a space inside); says which. Not sent."""

    title = "API key not usable"


class InvalidSettings(ChatError, ValueError):
    """A generation setting outside the documented range; caught before anything is sent."""

    title = "Setting out of range"


class BadInput(ChatError, ValueError):
    """A message or attachment that is too big, empty, or of a kind the model can't read; says the limit."""

    title = "Can't send this message"


class Throttled(ChatError):
    """This visitor sent too many messages recently; says how long to wait. Nothing was sent upstream."""

    title = "Slow down"


class Busy(ChatError):
    """The server is at its cap of simultaneous upstream calls; try again shortly."""

    title = "Server busy"
    retryable = True


class Restarting(ChatError):
    """This replica is draining before a restart; nothing was sent upstream. The next try goes to another one."""

    title = "Server restarting"
    retryable = True


class BadRequest(ChatError):
    """400: the API rejected the request body. Not retried."""

    title = "Request rejected"


class KeyRejected(ChatError):
    """401: the key is missing upstream or invalid. Not retried."""

    title = "API key rejected"


class OutOfCredits(ChatError):
    """403: the account has no credits left. Not retried."""

    title = "Out of credits"


class ModelUnavailable(ChatError):
    """404, or a model the API no longer serves: the message names models that work. Not retried."""

    title = "Model unavailable"


class EndpointNotFound(ChatError):
    """404 naming no model, for a model the catalogue offers: the address is wrong, so no other model is tried."""

    title = "Nothing at that address"


class RateLimited(ChatError):
    """429 after our retries ran out; the user is told when to try again."""

    title = "Rate limited"

    retryable = True


class ServerError(ChatError):
    """5xx: after our retries ran out (maintenance, gateway), or at once for a generation timeout (504)."""

    title = "The API is having trouble"

    retryable = True


class ConnectionFailed(ChatError):
    """The API could not be reached at all (refused, DNS, TLS); retried before giving up."""

    title = "Can't reach the API"

    retryable = True


class TimedOut(ChatError):
    """Connecting took too long, or the reply stopped arriving for longer than the read timeout."""

    title = "Timed out"

    retryable = True


class StreamBroken(ChatError):
    """The connection was cut while the reply was streaming; the partial text is kept."""

    title = "Connection cut"

    retryable = True


class BadResponse(ChatError):
    """The API answered with something that is not the documented JSON or SSE (a proxy page, garbage)."""

    title = "Unexpected answer"

    retryable = True


class UpstreamError(ChatError):
    """The API reported an error inside an otherwise successful stream."""

    title = "The API reported an error"

    retryable = True


def error_for_status(status: int) -> type[ChatError]:
    """The exception class for an HTTP status the API answered with."""
    return _BY_STATUS.get(status) or (ServerError if status >= 500 else ChatError)


_BY_STATUS: dict[int, type[ChatError]] = {
    400: BadRequest,
    401: KeyRejected,
    403: OutOfCredits,
    404: ModelUnavailable,
    429: RateLimited,
}

# What the user reads for each status when the body gives nothing better (texts in i18n, keys `status_<code>`).
STATUS_MESSAGES = frozenset({400, 401, 403, 404, 429, 500, 502, 503, 504})


def status_message(status: int) -> Msg:
    """The notice for an HTTP status the API answered with."""
    return Msg(f"status_{status}") if status in STATUS_MESSAGES else Msg("status_other", {"status": status})
