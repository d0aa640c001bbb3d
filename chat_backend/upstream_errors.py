"""upstream_errors: what went wrong upstream (a transport failure, an error answer) as the `ChatError` a visitor reads.

`ChatStream` hands every failure of its call here, so this is the one place that knows urllib3's and the socket's
exceptions and the vendor's error bodies. Everything quoted from an answer is redacted before it is cut, so a
key that falls across a cut can never leave half of itself behind.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import urlsplit

import urllib3.exceptions
from urllib3.response import HTTPResponse

from . import errors
from .catalogue import Catalogue
from .config import Settings
from .errors import MAX_VENDOR_MESSAGE, ChatError, redact
from .i18n import Msg

MAX_ERROR_BODY = 64_000
MAX_DETAIL = 300  # characters of an answer kept in `ChatError.detail` (and so in the log)
MAX_REQUEST_ID = 100  # characters of an id the API or a gateway gave, shown in notices (it can echo anything)


def quote(text: str, limit: int, *secrets: str | None) -> str:
    """`text` redacted, then cut to `limit` characters: in this order, so no part of a secret survives. Lone UTF-16
    halves (from JSON escapes) become U+FFFD: the browser's update could not carry them."""
    cut = redact(text, *secrets)[:limit]
    return cut.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class UpstreamErrors:
    """Knows enough of the settings and the catalogue to tell the user what a failure means."""

    def __init__(self, settings: Settings, catalogue: Catalogue) -> None:
        self.settings = settings
        self.catalogue = catalogue

    def transport(self, exc: Exception, key: str, *, streaming: bool) -> ChatError:
        """Turn a urllib3, http.client or socket failure into a ChatError that tells the user what happened."""
        chain = _causes(exc)

        def caused_by(*types: type[BaseException]) -> bool:
            return any(isinstance(link, types) for link in chain)

        settings = self.settings
        host = urlsplit(settings.base_url).hostname
        kept = errors.KEPT if streaming else ""
        kind: type[ChatError] = errors.ConnectionFailed
        params: dict[str, Any] = {"host": host}
        if caused_by(urllib3.exceptions.NameResolutionError):
            message = "net_dns"
        elif caused_by(ConnectionRefusedError):
            message = "net_refused"
        elif caused_by(urllib3.exceptions.ConnectTimeoutError) and not caused_by(urllib3.exceptions.NewConnectionError):
            kind = errors.TimedOut
            message, params = "net_connect_timeout", {"host": host, "seconds": f"{settings.connect_timeout:g}"}
        elif caused_by(urllib3.exceptions.ReadTimeoutError, TimeoutError):
            kind = errors.TimedOut
            message, params = "net_read_timeout", {"seconds": f"{settings.read_timeout:g}", "kept": kept}
        elif caused_by(ssl.SSLError, urllib3.exceptions.SSLError):
            message = "net_tls"
        elif streaming:
            kind = errors.StreamBroken
            message, params = "net_stream_cut", {"kept": kept}
        else:
            message = "net_failed"
        detail = quote(" <- ".join(f"{type(link).__name__}: {link}" for link in chain), 500, key)
        return kind(key=message, params=params, detail=detail)

    def answer(self, response: HTTPResponse, model: str, request_id: str, key: str) -> ChatError:
        """The ChatError for a non-2xx answer, with the vendor's message where it helps (at most `MAX_ERROR_BODY`
        of its body is read)."""
        status = response.status
        try:
            text = response.read(MAX_ERROR_BODY).decode("utf-8", errors="replace")
        except (urllib3.exceptions.HTTPError, OSError):  # the status says enough; the body is a courtesy
            text = ""
        body = _parse_json(text)
        vendor = _vendor_message(body)
        vendor_id = body.get("requestId") if isinstance(body, dict) else None
        vendor_id = vendor_id if isinstance(vendor_id, str) else None
        request_id = quote(vendor_id or response.headers.get("x-inference-id") or request_id, MAX_REQUEST_ID, key)
        detail = quote(f"{response.headers.get('Content-Type', '')}: {text}", MAX_DETAIL, key)
        if status == 404 or (status == 400 and self._about_model(model, vendor)):
            kind: type[ChatError] = errors.ModelUnavailable
            if status == 404 and self.catalogue.is_available(model) and model not in vendor:
                kind = errors.EndpointNotFound  # a wrong address, not a refused model: never a fallback
                url = f"{self.settings.base_url}/chat/completions"
                message = Msg("endpoint_missing", {"url": url})
            else:
                message = self.catalogue.unavailable_message(model)
            return kind(key=message.key, params=message.params, status=status, request_id=request_id, detail=detail)
        parts: dict[str, Any] = {"base": errors.status_message(status), "vendor": "", "advice": "", "page": ""}
        if vendor and status in (400, 429, 500):
            parts["vendor"] = Msg("vendor_said", {"vendor": quote(vendor, MAX_VENDOR_MESSAGE, key)})
        if status == 429:
            wait = response.headers.get("Retry-After", "")
            parts["advice"] = Msg("wait_seconds", {"seconds": wait}) if wait.isdigit() else Msg("wait_minute")
        elif status >= 500:
            parts["advice"] = Msg("api_side")
        if body is None and text.strip():
            parts["page"] = Msg("answer_page" if "<" in text[:200] else "answer_text")
        return errors.error_for_status(status)(
            key="status_message", params=parts, status=status, request_id=request_id, detail=detail
        )

    def _about_model(self, model: str, vendor: str) -> bool:
        return not self.catalogue.is_available(model) or model in vendor


def stream_error(payload: Any, key: str, *, kept: bool) -> ChatError:
    """The ChatError for an error object inside a stream (`kept`: text came before it and stays)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {"message": str(error or payload)}
    status = _status(error.get("status") or error.get("statusCode") or error.get("code"))
    said = error.get("message")
    vendor = quote(str(said), MAX_VENDOR_MESSAGE, key) if said else Msg("unspecified_error")
    detail = quote(json.dumps(error, ensure_ascii=False, default=str), MAX_DETAIL, key)
    params = {"vendor": vendor, "kept": errors.KEPT if kept else ""}
    return errors.UpstreamError(key="stream_error", params=params, status=status, detail=detail)


def bad_response(problem: Msg, raw: str, key: str) -> ChatError:
    """The ChatError for an answer that is not what the API sends: `problem` says how, `raw` is logged."""
    return errors.BadResponse(key="bad_response", params={"problem": problem}, detail=quote(raw, MAX_DETAIL, key))


def _status(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599 else None


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what caused it (`raise … from`, or raised while handling it), outermost first."""
    chain = [exc]
    while len(chain) < 8 and (inner := chain[-1].__cause__ or chain[-1].__context__) and inner not in chain:
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
