"""failures: the one place where transport failures and error answers of the API become `ChatError`s.

`ChatClient` (sending) and `ChatStream` (reading) both hand what went wrong to `Failures`, so imports run one
way: client -> stream -> failures. Everything quoted from an answer is redacted before it is cut, so a key
that falls across a cut can never leave half of itself behind.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import errors
from .catalogue import Catalogue
from .config import Settings
from .errors import MAX_VENDOR_MESSAGE, ChatError, redact

MAX_ERROR_BODY = 64_000
MAX_DETAIL = 300  # characters of an answer kept in `ChatError.detail` (and so in the log)
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


def quote(text: str, limit: int, *secrets: str | None) -> str:
    """`text` redacted, then cut to `limit` characters: in this order, so no part of a secret survives."""
    return redact(text, *secrets)[:limit]


class Failures:
    """Knows enough of the settings and the catalogue to tell the user what a failure means."""

    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue

    def transport(self, exc: Exception, key: str, *, streaming: bool) -> ChatError:
        """Turn a requests/urllib3/socket failure into a ChatError that tells the user what happened."""
        chain = _causes(exc)

        def caused_by(*types: type[BaseException]) -> bool:
            return any(isinstance(link, types) for link in chain)

        settings = self.settings
        host = urlsplit(settings.base_url).hostname
        kept = errors.KEPT_NOTE if streaming else ""
        kind: type[ChatError] = errors.ConnectionFailed
        if caused_by(urllib3.exceptions.NameResolutionError):
            message = f"Could not find the API host {host}. Check the internet connection and AIMLAPI_BASE_URL."
        elif caused_by(ConnectionRefusedError):
            message = (f"Could not connect to {host}: the connection was refused. Check AIMLAPI_BASE_URL, or "
                       "try later.")
        elif caused_by(requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
            kind = errors.TimedOut
            message = f"Could not connect to {host} within {settings.connect_timeout:g} s. Try again in a moment."
        elif caused_by(urllib3.exceptions.ReadTimeoutError, requests.Timeout, TimeoutError):
            kind = errors.TimedOut
            message = (f"The API sent nothing for {settings.read_timeout:g} s, so the request was abandoned."
                       f"{kept} Try again, or ask for a shorter answer.")
        elif isinstance(exc, requests.exceptions.SSLError):
            message = (f"A secure connection to {host} could not be set up (TLS error). "
                       "Check the system clock and proxy.")
        elif streaming:
            kind = errors.StreamBroken
            message = f"The connection to the API was cut while the reply was streaming.{kept} Send again to retry."
        else:
            message = f"The connection to {host} failed before a reply arrived. Try again in a moment."
        detail = quote(" <- ".join(f"{type(link).__name__}: {link}" for link in chain), 500, key)
        return kind(message, detail=detail)

    def status(self, response: requests.Response, model: str, request_id: str, key: str) -> ChatError:
        """The ChatError for a non-2xx answer, with the vendor's message where it helps."""
        status = response.status_code
        text = response.content[:MAX_ERROR_BODY].decode("utf-8", errors="replace")
        body = _parse_json(text)
        vendor = _vendor_message(body)
        vendor_id = body.get("requestId") if isinstance(body, dict) else None
        vendor_id = vendor_id if isinstance(vendor_id, str) else None
        request_id = vendor_id or response.headers.get("x-inference-id") or request_id
        detail = quote(f"{response.headers.get('Content-Type', '')}: {text}", MAX_DETAIL, key)
        if status == 404 or (status == 400 and self._about_model(model, vendor)):
            kind: type[ChatError] = errors.ModelUnavailable
            if status == 404 and self.catalogue.is_available(model) and model not in vendor:
                kind = errors.EndpointNotFound  # a wrong address, not a refused model: never a fallback
                url = f"{self.settings.base_url}/chat/completions"
                message = f"The API has nothing at {url} (404). Check AIMLAPI_BASE_URL."
            else:
                message = self.catalogue.unavailable_message(model)
            return kind(message, status=status, request_id=request_id, detail=detail)
        message = errors.STATUS_MESSAGES.get(status, f"The API answered with HTTP {status}.")
        if vendor and status in (400, 429, 500):
            message += f" It said: “{quote(vendor, MAX_VENDOR_MESSAGE, key)}”"
        if status == 429:
            wait = response.headers.get("Retry-After", "")
            message += f" Wait {wait} s and send again." if wait.isdigit() else " Wait a minute and send again."
        elif status >= 500:
            message += " This is on the API's side; send again in a moment."
        if body is None and text.strip():
            page = "a web page (probably from a proxy or gateway)" if "<" in text[:200] else "text that is not JSON"
            message += f" The answer was {page}, not the API's own error."
        return errors.error_for_status(status)(message, status=status, request_id=request_id, detail=detail)

    def _about_model(self, model: str, vendor: str) -> bool:
        return not self.catalogue.is_available(model) or model in vendor


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what lies behind it (MaxRetryError.reason, wrapped args, __cause__), outermost first."""
    chain = [exc]
    while len(chain) < 8:
        seen = chain[-1]
        inner = getattr(seen, "reason", None)
        if not isinstance(inner, BaseException) and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if not isinstance(inner, BaseException):
            inner = seen.__cause__ or seen.__context__
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
    return chain


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _vendor_message(body: Any) -> str:
    """The error message from either the vendor's shape ({"message"}) or OpenAI's ({"error": {"message"}})."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    message = body.get("message") or (error.get("message") if isinstance(error, dict) else error)
    if isinstance(message, list):
        message = "; ".join(map(str, message))
    return message.strip() if isinstance(message, str) else ""
