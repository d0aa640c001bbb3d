"""transcript: the messages the app adds to a conversation (replies, thoughts, notices, facts) and exports.

Notices and facts are assistant messages whose `metadata.id` starts with `messages.NOTICE_ID`, the model's
thinking one whose id starts with `messages.THOUGHT_ID`, so `to_api_messages` never sends either back to the
model; Gradio shows them as titled, collapsible boxes. A thought sits above its answer, open with a spinner
while it grows and folded once the answer starts; exports and shared pages keep it folded, apart.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .errors import ChatError
from .i18n import CATALOGUES, DEFAULT, t
from .messages import ERROR_NOTICE_ID, NOTICE_ID, THOUGHT_ID, describe_content, is_notice, is_thought
from .reasoning import Shown
from .stream import ChatResult

_notice_ids = itertools.count(1)
Message = dict[str, Any]
MIN_THOUGHT_SECONDS = 0.1  # a thought timed shorter came with its answer in one piece: its duration means nothing


def notice(title: str, body: str, *, collapsed: bool = False, prefix: str = NOTICE_ID) -> Message:
    """An assistant message shown as a titled box and never sent to the model."""
    metadata: dict[str, Any] = {"title": title, "id": f"{prefix}-{next(_notice_ids)}"}
    if collapsed:
        metadata["status"] = "done"
    return {"role": "assistant", "content": body, "metadata": metadata}


def error_notice(error: ChatError, lang: str = DEFAULT) -> Message:
    """What happened, what to do, and the request id to quote when asking for help, in the visitor's language.

    The title comes from the nearest class in the error's hierarchy that has one in the catalogue (every class
    that sets its own `title` has: tests/test_i18n.py checks), the body from its message key when it carries one.
    """
    title = error_title(type(error), lang)
    body = error.message(lang)
    if error.request_id:
        body += "\n\n" + t("request_id", lang, id=error.request_id)
    return notice(f"⚠️ {title}", body, prefix=ERROR_NOTICE_ID)


def error_title(kind: type[ChatError], lang: str = DEFAULT) -> str:
    """The title of the nearest class in `kind`'s hierarchy that has one: `Forged` is a kind of `BadInput`."""
    keys = (f"error_{cls.__name__}" for cls in kind.__mro__)
    return t(next(key for key in keys if key in CATALOGUES[DEFAULT]), lang)


def thought(
    text: str, lang: str = DEFAULT, *, seconds: float | None, thinking: bool = False, cut: bool = False
) -> Message:
    """The model's thinking as a message of its own: open with a spinner while it grows, then folded under a
    title saying how long it took, or that it was cut off. Never sent back to the model."""
    if thinking:
        title = t("thought_pending", lang)
    elif seconds is None or seconds < MIN_THOUGHT_SECONDS:  # a whole answer at once: no duration to tell
        title = t("thought_cut_untimed" if cut else "thought_untimed", lang)
    else:
        title = t("thought_cut" if cut else "thought_done", lang, seconds=_seconds(seconds))
    metadata = {"title": title, "id": f"{THOUGHT_ID}-{next(_notice_ids)}", "status": "pending" if thinking else "done"}
    return {"role": "assistant", "content": text, "metadata": metadata}


def streaming(shown: Shown, lang: str = DEFAULT) -> str | list[Message]:
    """A reply while it streams: its text alone, or its thought (open while growing) and what of the answer came."""
    if not shown.thought:
        return shown.answer
    answer = [{"role": "assistant", "content": shown.answer}] if shown.answer else []
    return [thought(shown.thought, lang, seconds=shown.thought_seconds, thinking=shown.thinking), *answer]


def stopped(history: Sequence[Mapping[str, Any]], lang: str = DEFAULT) -> list[Message]:
    """The chat after a Stop: a thought still marked as growing is shown cut off, since the stopped reply can no
    longer say so itself (its last update stays on the page, spinner and all)."""
    settled = []
    for message in history:
        metadata = message.get("metadata") or {}
        if is_thought(message) and metadata.get("status") == "pending":
            metadata = {**metadata, "status": "done", "title": t("thought_cut_untimed", lang)}
            message = {**message, "metadata": metadata}
        settled.append(dict(message))
    return settled


def failed(shown: Shown, error: ChatError, lang: str = DEFAULT) -> list[Message]:
    """What of the reply came (kept; a thought still growing is marked cut), followed by the error notice."""
    reply = [{"role": "assistant", "content": shown.answer}] if shown.answer else []
    if shown.thought:
        reply.insert(0, thought(shown.thought, lang, seconds=shown.thought_seconds, cut=shown.thinking or shown.cut))
    return reply + [error_notice(error, lang)]


def finished(result: ChatResult, lang: str = DEFAULT) -> list[Message]:
    """The thought (if the model showed one), the reply, a note if older messages were left out or the reply was
    cut, and the facts box."""
    messages: list[Message] = []
    if result.thought:
        messages.append(thought(result.thought, lang, seconds=result.thought_seconds, cut=result.thought_cut))
    if result.text:
        messages.append({"role": "assistant", "content": result.text})
    elif not result.thought_cut:  # a thought cut short says so in its title, and the cut notice says why
        reason = t("finish_reason_note", lang, reason=result.finish_reason) if result.finish_reason else ""
        messages.append(notice(t("empty_reply_title", lang), t("empty_reply", lang, reason=reason)))
    if result.dropped_messages:
        key = "dropped_by_limit" if result.dropped_by_limit else "dropped"
        messages.append(notice(t("dropped_title", lang), t(key, lang, count=result.dropped_messages)))
    if result.finish_reason == "length":
        messages.append(notice(t("cut_title", lang), t("cut_while_thinking" if result.thought_cut else "cut", lang)))
    messages.append(notice(facts_title(result, lang), facts_details(result, lang), collapsed=True))
    return messages


def facts_title(result: ChatResult, lang: str = DEFAULT) -> str:
    """One compact line: tokens in → out (of which reasoning) · time to first thought and to first (answer) token ·
    tokens per second · cost."""
    parts = []
    if usage := result.usage:
        counts = {"prompt": f"{usage.prompt_tokens:,}", "completion": f"{usage.completion_tokens:,}"}
        if usage.reasoning_tokens:
            parts.append(t("facts_tokens_reasoning", lang, reasoning=f"{usage.reasoning_tokens:,}", **counts))
        else:
            parts.append(t("facts_tokens", lang, **counts))
    if result.time_to_first_thought is not None:
        parts.append(t("facts_first_thought", lang, seconds=f"{result.time_to_first_thought:.2f}"))
    if result.time_to_first_token is not None:
        key = "facts_first_answer" if result.thought else "facts_first_token"
        parts.append(t(key, lang, seconds=f"{result.time_to_first_token:.2f}"))
    if (speed := tokens_per_second(result)) is not None:
        parts.append(t("facts_speed", lang, speed=f"{speed:.0f}"))
    if result.cost_usd is not None:
        parts.append(f"${result.cost_usd:.5f}")
    return "📊 " + (" · ".join(parts) or t("facts_seconds", lang, seconds=f"{result.duration:.2f}"))


def facts_details(result: ChatResult, lang: str = DEFAULT) -> str:
    rows = [
        ("facts_model", result.model),
        ("facts_finish_reason", result.finish_reason or "—"),
        ("facts_total_time", t("facts_seconds", lang, seconds=f"{result.duration:.2f}")),
        ("facts_credits", f"{result.credits_used:g}" if result.credits_used is not None else "—"),
        ("facts_request_id", f"`{result.inference_id or result.client_request_id}`"),
    ]
    return "\n".join(f"- **{t(name, lang)}:** {value}" for name, value in rows)


def tokens_per_second(result: ChatResult) -> float | None:
    """Output speed after the first token (of thought or answer), when the API reported the token count."""
    firsts = [time for time in (result.time_to_first_thought, result.time_to_first_token) if time is not None]
    if not result.usage or not firsts:
        return None
    generating = result.duration - min(firsts)
    return result.usage.completion_tokens / generating if generating > 0.01 else None


def export_records(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as plain records: role, text, attachment names, and the title of a notice or a thought."""
    records = []
    for message in history:
        text, attachments = describe_content(message.get("content"))
        record: dict[str, Any] = {"role": message.get("role"), "content": text}
        if attachments:
            record["attachments"] = attachments
        for kind, found in (("notice", is_notice(message)), ("thought", is_thought(message))):
            if found:
                record[kind] = str((message.get("metadata") or {}).get("title") or "")
        records.append(record)
    return records


def to_json(history: Sequence[Mapping[str, Any]]) -> str:
    exported = {"exported_at": _now(), "messages": export_records(history)}
    return json.dumps(exported, ensure_ascii=False, indent=2)


def to_markdown(history: Sequence[Mapping[str, Any]], lang: str = DEFAULT) -> str:
    lines = [f"# {t('export_conversation', lang)}", "", f"_{t('export_exported', lang, when=_now())}_", ""]
    after_thought = False
    for record in export_records(history):
        if "notice" in record:
            body = record["content"].replace("\n", "\n> ")
            lines += [f"> **{record['notice']}**", ">", f"> {body}", ""]
            continue
        speaker = t("export_you" if record["role"] == "user" else "export_assistant", lang)
        if not after_thought:  # a thought and its answer share the heading
            lines += [f"## {speaker}", ""]
        after_thought = "thought" in record
        if after_thought:  # folded where Markdown allows HTML, and apart from the answer everywhere
            body = re.sub("(?i)<(/details)", r"&lt;\1", record["content"])  # the thought cannot close its fold
            lines += [f"<details><summary>{html.escape(record['thought'])}</summary>", "", body, "", "</details>", ""]
            continue
        lines += [f"📎 {name}" for name in record.get("attachments", [])]
        lines += [record["content"], ""]
    return "\n".join(lines)


def _seconds(seconds: float) -> str:
    """A duration as people say it: 3.4 below ten seconds, 12 above."""
    return f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
