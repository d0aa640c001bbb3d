"""fallback: answer with the fallback model (CHAT_FALLBACK_MODEL) when the API refuses the chosen one.

abab6.5s-chat stays the default model although the API has retired it. Rather than greet every newcomer
with an error, the same message goes to the fallback model, and the caller learns of it (`Switch`) so it can
say so in one line and move the visitor's Model setting along. Only a refusal of the model itself switches
(`ModelUnavailable`): a rejected key, a rate limit, a server error or a bad parameter is shown as it is.
When the catalogue already shows the model as retired or absent, the refused call is not made at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

from .catalogue import Catalogue, ModelInfo
from .client import ChatClient
from .errors import ChatError, ModelUnavailable
from .i18n import DEFAULT, t
from .messages import ERROR_NOTICE_ID, Message, is_notice
from .reasoning import Shown
from .stream import ChatResult, ChatStream
from .transcript import notice
from .visitor_settings import ChatSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Switch:
    """The chosen model was refused (or known to be) and the fallback model answered instead."""

    requested: str
    answered_by: str
    retired: bool  # False: the API does not offer it at all

    def notice(self, lang: str = DEFAULT, answered: bool = True) -> Message:
        """The one line the visitor reads under the reply, in the visitor's language; when the fallback model's
        call failed before any text (`answered` False), it says where the message went instead."""
        sent = "" if answered else "_sent"
        line = t(
            ("fallback_retired" if self.retired else "fallback_not_offered") + sent,
            lang,
            requested=self.requested,
            model=self.answered_by,
        )
        return notice(t(f"fallback{sent}_title", lang, model=self.answered_by), line)


def known_refused(catalogue: Catalogue, name: str) -> bool:
    """Whether the catalogue already says the API would refuse `name`: retired, or missing from the live list."""
    return catalogue.info(name).deprecated or catalogue.offers(name) is False


def moved_to(settings: ChatSettings, model: ModelInfo) -> ChatSettings:
    """`settings` for `model`: the temperature capped at its maximum, parameters it refuses left out."""
    options = {name: value for name, value in settings.options.items() if name not in model.unsupported}
    if settings.temperature is not None:
        options["temperature"] = min(settings.temperature, model.temperature_max)
    return replace(settings, model=model.id, options=options)


def with_notice(messages: list[Message], switch: Switch | None, lang: str = DEFAULT) -> list[Message]:
    """The finished (or failed) turn with the switch notice after the reply text (and its thought, which comes
    first), when there was a switch."""
    if switch is None:
        return messages
    at = next((index + 1 for index, message in enumerate(messages) if "metadata" not in message), 0)
    answered = bool(at) or not any(is_notice(message, ERROR_NOTICE_ID) for message in messages)
    return [*messages[:at], switch.notice(lang, answered), *messages[at:]]


class FallbackStream:
    """A `ChatStream` that moves to the fallback model when the chosen one is refused before any text arrived.

    Use it as a ChatStream (iterate, `close()`, `with`, `.text`, `.result`); `.switch` says whether it moved.
    """

    def __init__(
        self,
        client: ChatClient,
        messages: list[Message],
        settings: ChatSettings,
        user_key: str | None,
        fallback_model: str,
    ) -> None:
        self.switch: Switch | None = None
        self._client, self._messages, self._settings, self._user_key = client, messages, settings, user_key
        catalogue = client.catalogue
        fallback = fallback_model if fallback_model and fallback_model != settings.model else ""
        self._fallback = fallback if fallback and not known_refused(catalogue, fallback) else ""
        self._refusal: ModelUnavailable | None = None
        self._closed = False
        self._iterator: Iterator[str] | None = None
        if self._fallback and known_refused(catalogue, settings.model):
            log.info("model %s is not in the catalogue's offer; asking %s without trying it", settings.model, fallback)
            self._stream = self._switched()
        else:
            self._stream = client.stream_chat(messages, settings, user_key)

    @property
    def text(self) -> str:
        return self._stream.text

    @property
    def result(self) -> ChatResult | None:
        return self._stream.result

    def shown(self) -> Shown:
        return self._stream.shown()

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    def defer_reads(self, until: float) -> None:
        self._stream.defer_reads(until)

    def close(self) -> None:
        """Stop whichever call is running; no fallback call starts after this. The reader's thread ends the
        iteration (the stopped stream ends at once); closing it from here could race that thread."""
        self._closed = True
        self._stream.close()

    def __enter__(self) -> FallbackStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> Iterator[str]:
        if self.switch is None:
            try:
                yield from self._stream
                return
            except ModelUnavailable as refused:
                if not self._fallback or self._stream.text:
                    raise
                log.info("model %s refused (HTTP %s); asking %s", self._settings.model, refused.status, self._fallback)
                self._refusal = refused
                try:
                    switched = self._switched()
                except ChatError:  # the fallback can't take this message either (a smaller window): nothing moved
                    raise refused from None
                if self._closed:  # Stop came while switching: the fallback call is never sent
                    self.switch = None
                    raise
                self._stream = switched
        try:
            yield from self._stream
        except ModelUnavailable as refused:
            if self._stream.text:
                raise
            self.switch = None  # the fallback is refused too: say what was wrong with the chosen model
            model = self._settings.model
            message = self._client.catalogue.unavailable_message(model)
            raise self._refusal or ModelUnavailable(key=message.key, params=message.params) from refused

    def _switched(self) -> ChatStream:
        """The fallback model's call; the switch counts only once that call could be prepared (its window fits)."""
        catalogue = self._client.catalogue
        settings = moved_to(self._settings, catalogue.info(self._fallback))
        stream = self._client.stream_chat(self._messages, settings, self._user_key)
        known = catalogue.info(self._settings.model).listed  # a model we know of that is refused has been retired
        self.switch = Switch(self._settings.model, self._fallback, retired=known)
        return stream
