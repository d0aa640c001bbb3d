"""reasoning: a reply's thinking kept apart from its answer, in whichever shape the model or the gateway sends it.

MiniMax's M-series think before they answer. The thinking comes:
- inline in `content`, before the answer: `<think>…</think>` (M2) or `<mm:think>…</mm:think>` (M3);
- inline without its opening tag, when a chat template prefilled it: the reply starts inside the thinking and
  the first closing tag ends it;
- in a field of its own beside `content`: `reasoning_content`, `reasoning`, or `reasoning_details` (a list of
  `{type, text}`), in a stream's `delta` or a whole answer's `message`.

`Split` takes the pieces as they arrive (a tag may be cut anywhere between two pieces) and keeps the thought and
the answer so far. Text whose place is not known yet (no opening tag) is shown where it most likely belongs and
moved once a closing tag, or the end of the reply, settles it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TAGS = {"<think>": "</think>", "<mm:think>": "</mm:think>"}  # opening tag -> its closing tag; each opens with "<"
CLOSERS = tuple(TAGS.values())
FIELDS = ("reasoning_content", "reasoning", "reasoning_details")  # the first one present is read
_START, _THINKING, _UNDECIDED, _ANSWER = "start", "thinking", "undecided", "answer"


class Thought(str):
    """A piece of the model's thinking (a plain `str` piece is answer)."""


def field_text(part: Any) -> str:
    """The thinking in one `delta` or `message`, from the first reasoning field it fills: gateways that send
    the same text twice (`reasoning` and `reasoning_details`) show it once. "" when there is none."""
    if not isinstance(part, Mapping):
        return ""
    for name in FIELDS:
        value = part.get(name)
        if isinstance(value, list):
            value = "".join(
                item["text"] for item in value if isinstance(item, Mapping) and isinstance(item.get("text"), str)
            )
        if isinstance(value, str) and value:
            return value
    return ""


def answer_of(text: str) -> str:
    """`text` without a leading thinking block: a past reply saved before thinking was shown apart. Only a block
    that opens the reply counts, so an answer that merely mentions a tag is left whole."""
    stripped = text.lstrip()
    for opener, closer in TAGS.items():
        if stripped.startswith(opener):
            end = stripped.find(closer, len(opener))
            return "" if end < 0 else stripped[end + len(closer) :].lstrip()
    return text


@dataclass(frozen=True)
class Shown:
    """What a reply shows at one moment: its thought and answer so far, and the thought's timing."""

    thought: str = ""
    answer: str = ""
    thinking: bool = False  # the thought is still growing
    cut: bool = False  # the reply ended (failed, stopped, at max_tokens) while the thought was still growing
    thought_seconds: float | None = None  # from its first piece to the answer's (or to now, while thinking)


class _Text:
    """Text built from many small pieces, joined only when read (each read is linear, each piece constant)."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def add(self, piece: str) -> None:
        self._parts.append(piece)

    def take(self) -> str:
        text = self.value
        self._parts.clear()
        return text

    @property
    def value(self) -> str:
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


class Split:
    """One reply's thinking and answer, from content that may carry thinking tags and from reasoning fields.

    `content` and `reasoning` take the next piece and return what became visible, as `Thought` and `str` pieces;
    `end` settles the rest. With `starts_thinking` (a model that always thinks first), content without an opening
    tag is shown as thought until a closing tag ends it, otherwise as answer until a closing tag shows it was
    thought; either guess is corrected. Thread-safe: the reader feeds it while the web server reads `shown`.
    """

    def __init__(self, starts_thinking: bool = False, clock: Callable[[], float] = time.monotonic) -> None:
        self.starts_thinking = starts_thinking
        self.clock = clock
        self.thought_started: float | None = None
        self.answer_started: float | None = None
        self.ended: float | None = None
        self.cut = False  # set by `end`: the reply ended while the thought was still growing
        self._thought, self._answer = _Text(), _Text()
        self._state = _START
        self._closers = CLOSERS
        self._held = ""  # the tail that may still turn out to be (part of) a tag
        self._guessed = False  # the thought so far is a guess: content that opened with no tag
        self._separate = False  # thinking came in a field of its own, so content is answer
        self._trim = False  # drop the whitespace between a closing tag and the answer
        self._lock = threading.Lock()

    def reasoning(self, text: str) -> list[str]:
        """A piece of thinking from a reasoning field."""
        with self._lock:
            self._separate = True
            return [self._add(text, thought=True)] if text else []

    def content(self, text: str) -> list[str]:
        """A piece of `content`: thought, answer, or some of each."""
        with self._lock:
            return self._content(text)

    def end(self, complete: bool) -> list[str]:
        """The reply ended; `complete` if the model finished it (no Stop, no cut, not at `max_tokens`). Text held
        back as a possible tag is shown, and a guess still open is settled."""
        with self._lock:
            held, self._held = self._held, ""
            out = [self._add(held, thought=self._state == _THINKING)] if held else []
            if self._guessed and self._state == _THINKING and complete:  # no closing tag came: it was the answer
                self._answer.add(self._thought.take())
                self.answer_started, self.thought_started = self.thought_started, None
                self._guessed = False
            self.cut = not complete and self._open()
            self._state, self.ended = _ANSWER, self.clock()
            return out

    @property
    def thought(self) -> str:
        with self._lock:
            return self._thought.value

    @property
    def answer(self) -> str:
        with self._lock:
            return self._answer.value

    def shown(self) -> Shown:
        """The thought and answer as they should be displayed now."""
        with self._lock:
            thought, thinking = self._thought.value, self._open()
            started, ended = self.thought_started, self.ended if self.answer_started is None else self.answer_started
            seconds = None if started is None else (self.clock() if ended is None else ended) - started
            return Shown(thought, self._answer.value, thinking and bool(thought), self.cut, seconds)

    def _open(self) -> bool:
        """Whether the thought is still growing: inside a tag, or thinking in a field with no answer yet."""
        return self._state == _THINKING or (self._separate and not self._answer.value and self._state != _ANSWER)

    def _content(self, text: str) -> list[str]:
        out: list[str] = []
        text, self._held = self._held + text, ""
        while text:
            if self._state == _START:
                stripped = text.lstrip()
                if not stripped or any(tag.startswith(stripped) for tag in TAGS):  # may still open with a tag
                    self._held = text
                    break
                opener = next((tag for tag in TAGS if stripped.startswith(tag)), "")
                if opener:
                    self._state, self._closers, text = _THINKING, (TAGS[opener],), stripped[len(opener) :]
                elif self._separate:
                    self._state = _ANSWER
                elif self.starts_thinking:
                    self._state, self._guessed = _THINKING, True
                else:
                    self._state = _UNDECIDED
            elif self._state == _ANSWER:
                if self._trim:
                    text = text.lstrip()
                    self._trim = not text
                if text:
                    out.append(self._add(text, thought=False))
                break
            else:
                at, closer = _find_first(text, self._closers)
                if at < 0:
                    keep = _tag_start(text, self._closers)
                    visible, self._held = text[: len(text) - keep], text[len(text) - keep :]
                    if visible:
                        out.append(self._add(visible, thought=self._state == _THINKING))
                    break
                if self._state == _UNDECIDED:  # what was shown as answer was thinking
                    self._thought.add(self._answer.take())
                    self.thought_started, self.answer_started = self.answer_started, None
                if text[:at]:
                    out.append(self._add(text[:at], thought=True))
                self._state, self._trim, self._guessed = _ANSWER, True, False
                text = text[at + len(closer) :]
        return out

    def _add(self, text: str, thought: bool) -> str:
        if thought:
            self._thought.add(text)
            if self.thought_started is None:
                self.thought_started = self.clock()
            return Thought(text)
        self._answer.add(text)
        if self.answer_started is None:
            self.answer_started = self.clock()
        return text


def _find_first(text: str, tags: tuple[str, ...]) -> tuple[int, str]:
    """The earliest of `tags` in `text`: (index, tag), or (-1, "")."""
    if "<" not in text:  # per token: one scan for the character every tag opens with
        return -1, ""
    found = [(text.find(tag), tag) for tag in tags]
    return min(((at, tag) for at, tag in found if at >= 0), default=(-1, ""))


def _tag_start(text: str, tags: tuple[str, ...]) -> int:
    """How many characters at the end of `text` could begin one of `tags` (to be held until the next piece).
    Such a tail opens with "<", as every tag does, so only the last few "<" are tried."""
    at = text.find("<", max(0, len(text) - max(len(tag) for tag in tags) + 1))
    while at >= 0:
        if any(tag.startswith(text[at:]) for tag in tags):
            return len(text) - at
        at = text.find("<", at + 1)
    return 0
