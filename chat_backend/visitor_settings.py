"""visitor_settings: the one table of what a visitor may set, and the per-call settings made from it.

The sidebar's components, `respond`'s parameters (and so the public API's documented parameters), the examples'
padding and the request body are all made from `FIELDS`, in its order. Adding a generation setting is a row
here, its label (`ui_<name>`) in i18n.py, and a test. Values come from the browser or from any API client, so
each is read by `read` first: cheap checks of type and size before anything else looks at it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import InvalidSettings
from .i18n import Msg

DEFAULT_MODEL = "abab6.5s-chat"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DEFAULT_MAX_TOKENS = 2048  # the field's default is also what a cleared field means
MAX_KEY_CHARS = 512  # longer than any key; anything longer is refused before a character of it is looked at
MAX_MODEL_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 100_000

Kind = Literal["model", "text", "slider", "number", "key"]


@dataclass(frozen=True)
class Field:
    """One thing a visitor may set. `body` names its field in the request body (None: it is not sent as one);
    a value equal to `unsent` is left out, so the API's own default applies. `refused_by` lists the models
    whose schema lacks the field."""

    name: str
    kind: Kind
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    body: str | None = None
    unsent: Any = None
    advanced: bool = False
    refused_by: frozenset[str] = frozenset()
    label: str = ""  # i18n key; `ui_<name>` unless given
    max_chars: int = 0  # for text: the most characters accepted

    @property
    def label_key(self) -> str:
        return self.label or f"ui_{self.name}"


FIELDS: tuple[Field, ...] = (
    Field("model", "model", DEFAULT_MODEL, body="model", max_chars=MAX_MODEL_CHARS),
    Field("system_prompt", "text", DEFAULT_SYSTEM_PROMPT, max_chars=MAX_SYSTEM_PROMPT_CHARS),
    Field("temperature", "slider", 1.0, 0.0, 2.0, 0.05, body="temperature"),
    Field("top_p", "slider", 0.95, 0.01, 1.0, 0.01, body="top_p"),
    Field("max_tokens", "number", DEFAULT_MAX_TOKENS, 1, 1_000_000, 1, body="max_tokens"),
    Field("presence_penalty", "slider", 0.0, -2.0, 2.0, 0.1, body="presence_penalty", unsent=0.0, advanced=True),
    Field(
        "frequency_penalty",
        "slider",
        0.0,
        -2.0,
        2.0,
        0.1,
        body="frequency_penalty",
        unsent=0.0,
        advanced=True,
        refused_by=frozenset({"MiniMax-Text-01"}),  # its request schema has no frequency_penalty
    ),
    Field("seed", "number", 0, 0, 2**31 - 1, 1, body="seed", unsent=0, advanced=True, label="ui_seed"),
    Field("user_key", "key", "", max_chars=MAX_KEY_CHARS, label="ui_key"),
)
BY_NAME = {spec.name: spec for spec in FIELDS}
NAMES = tuple(BY_NAME)
OPTIONS = tuple(spec.name for spec in FIELDS if spec.body and spec.name != "model")  # ChatSettings.options


def defaults() -> dict[str, Any]:
    """Every field's default by name, in table order (what the page starts with)."""
    return {spec.name: spec.default for spec in FIELDS}


def refused_by(model: str) -> frozenset[str]:
    """The body fields `model`'s schema lacks."""
    return frozenset(spec.name for spec in FIELDS if model in spec.refused_by)


@dataclass(frozen=True)
class ChatSettings:
    """Generation settings for one call, checked against the table on construction.

    `options` holds the other body fields by name (max_tokens, temperature, …); a missing one, or one equal to
    its field's `unsent`, is not sent.
    """

    model: str = DEFAULT_MODEL
    system_prompt: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = True

    def __post_init__(self) -> None:
        if len(self.model) > MAX_MODEL_CHARS:  # judged by its length: it could be megabytes from a script
            raise InvalidSettings(
                key="settings_model_name", params={"length": f"{len(self.model):,}", "limit": MAX_MODEL_CHARS}
            )
        if not self.model.strip():
            raise InvalidSettings(key="settings_no_model")
        if unknown := sorted(set(self.options) - set(OPTIONS)):
            raise TypeError(f"not a generation setting: {unknown}")
        for name, value in self.options.items():
            _check(BY_NAME[name], value)

    @classmethod
    def of(
        cls, model: str = DEFAULT_MODEL, system_prompt: str = "", stream: bool = True, **options: Any
    ) -> ChatSettings:
        """Settings from keywords, e.g. `ChatSettings.of(temperature=0.7)`: any name in `OPTIONS`."""
        return cls(model, system_prompt, options, stream)

    @property
    def max_tokens(self) -> int:
        return int(self.options.get("max_tokens") or DEFAULT_MAX_TOKENS)

    @property
    def temperature(self) -> float | None:
        value = self.options.get("temperature")
        return None if value is None else float(value)

    def sent(self) -> dict[str, Any]:
        """The body fields this call sends (model and max_tokens always), in table order."""
        chosen = {"model": self.model, "max_tokens": self.max_tokens, **self.options}
        return {
            spec.body: chosen[spec.name]
            for spec in FIELDS
            if spec.body and chosen.get(spec.name) is not None and chosen[spec.name] != spec.unsent
        }


@dataclass(frozen=True)
class Chosen:
    """What one message's settings fields held, read and checked: the call's settings and the pasted key."""

    settings: ChatSettings
    user_key: str


def read(values: Sequence[Any], default_model: str) -> Chosen:
    """`respond`'s settings arguments (in table order) as checked settings; `InvalidSettings` says what is wrong.

    Cheap first: a value of the wrong type or an over-long text is refused before anything reads it whole. A
    cleared field means its default (an empty model: the server's).
    """
    if len(values) != len(FIELDS):
        raise InvalidSettings(key="settings_count", params={"count": len(values), "expected": len(FIELDS)})
    raw = dict(zip(NAMES, values, strict=True))
    texts = {spec.name: _text(spec, raw[spec.name]) for spec in FIELDS if spec.kind in ("model", "text", "key")}
    numbers = {spec.name: _number(spec, raw[spec.name]) for spec in FIELDS if spec.kind in ("slider", "number")}
    options = {name: value for name, value in numbers.items() if name in OPTIONS}
    settings = ChatSettings(
        model=texts["model"] or default_model, system_prompt=texts["system_prompt"], options=options
    )
    return Chosen(settings, texts["user_key"])


def _text(spec: Field, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidSettings(key="settings_type", params={"label": Msg(spec.label_key)})
    if spec.max_chars and len(value) > spec.max_chars:
        raise InvalidSettings(
            key="settings_too_long",
            params={"label": Msg(spec.label_key), "length": f"{len(value):,}", "limit": f"{spec.max_chars:,}"},
        )
    if not _sendable(spec, value):
        raise InvalidSettings(key="settings_type", params={"label": Msg(spec.label_key)})
    return value


def _sendable(spec: Field, value: str) -> bool:
    """Text that can go into a request body: no lone surrogate (what a JSON `\\ud800` escape gives, which UTF-8
    cannot carry), and in a model name no control character either (a key's are `config.check_key`'s to judge)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return spec.kind != "model" or value.isprintable()


def _number(spec: Field, value: Any) -> float | int:
    """A number within the field's range; None (a cleared field) is the default; whole fields become ints."""
    if value is None:
        value = spec.default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSettings(key="settings_type", params={"label": Msg(spec.label_key)})
    _check(spec, value)
    return int(value) if spec.step == 1 else float(value)


def _check(spec: Field, value: Any) -> None:
    """A body field's value: a finite number within [low, high], whole where the step is 1."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    low = -math.inf if spec.low is None else spec.low
    high = math.inf if spec.high is None else spec.high
    # Compared before any conversion: a whole number may be too large for a float (JSON sends any size).
    finite = isinstance(number, int) or math.isfinite(number)
    if not (finite and low <= number <= high and (spec.step != 1 or float(number).is_integer())):
        raise InvalidSettings(
            key="settings_range",
            params={"label": Msg(spec.label_key), "low": _shown(low), "high": _shown(high), "value": str(value)[:40]},
        )


def _shown(bound: float) -> str:
    """A range's end as people write it: 1,000,000 rather than 1e+06."""
    return f"{bound:,.0f}" if float(bound).is_integer() else f"{bound:g}"
