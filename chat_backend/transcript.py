"""transcript: the messages the app adds to a conversation (replies, notices, per-reply facts) and exports.

Notices and facts are assistant messages whose `metadata.id` starts with `messages.NOTICE_ID`, so
`to_api_messages` never sends them back to the model; Gradio shows them as titled, collapsible boxes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .errors import ChatError
from .i18n import CATALOGUES, DEFAULT, t
from .messages import ERROR_NOTICE_ID, NOTICE_ID, describe_content, is_notice
from .stream import ChatResult

_notice_ids = itertools.count(1)
Message = dict[str, Any]


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


def failed(partial_text: str, error: ChatError, lang: str = DEFAULT) -> list[Message]:
    """The partial reply (kept) followed by the error notice."""
    reply = [{"role": "assistant", "content": partial_text}] if partial_text else []
    return reply + [error_notice(error, lang)]


def finished(result: ChatResult, lang: str = DEFAULT) -> list[Message]:
    """The reply, a note if older messages were left out or the reply was cut, and the facts box."""
    messages: list[Message] = [{"role": "assistant", "content": result.text}] if result.text else []
    if not result.text:
        reason = t("finish_reason_note", lang, reason=result.finish_reason) if result.finish_reason else ""
        messages.append(notice(t("empty_reply_title", lang), t("empty_reply", lang, reason=reason)))
    if result.dropped_messages:
        key = "dropped_by_limit" if result.dropped_by_limit else "dropped"
        messages.append(notice(t("dropped_title", lang), t(key, lang, count=result.dropped_messages)))
    if result.finish_reason == "length":
        messages.append(notice(t("cut_title", lang), t("cut", lang)))
    messages.append(notice(facts_title(result, lang), facts_details(result, lang), collapsed=True))
    return messages


def facts_title(result: ChatResult, lang: str = DEFAULT) -> str:
    """One compact line: tokens in → out · time to first token · tokens per second · cost."""
    parts = []
    if result.usage:
        parts.append(
            t(
                "facts_tokens",
                lang,
                prompt=f"{result.usage.prompt_tokens:,}",
                completion=f"{result.usage.completion_tokens:,}",
            )
        )
    if result.time_to_first_token is not None:
        parts.append(t("facts_first_token", lang, seconds=f"{result.time_to_first_token:.2f}"))
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
    """Output speed after the first token, when the API reported the token count."""
    if not result.usage or result.time_to_first_token is None:
        return None
    generating = result.duration - result.time_to_first_token
    return result.usage.completion_tokens / generating if generating > 0.01 else None


def export_records(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as plain records: role, text, attachment names, and the notice title if any."""
    records = []
    for message in history:
        text, attachments = describe_content(message.get("content"))
        record: dict[str, Any] = {"role": message.get("role"), "content": text}
        if attachments:
            record["attachments"] = attachments
        if is_notice(message):
            record["notice"] = (message.get("metadata") or {}).get("title", "")
        records.append(record)
    return records


def to_json(history: Sequence[Mapping[str, Any]]) -> str:
    exported = {"exported_at": _now(), "messages": export_records(history)}
    return json.dumps(exported, ensure_ascii=False, indent=2)


def to_markdown(history: Sequence[Mapping[str, Any]], lang: str = DEFAULT) -> str:
    lines = [f"# {t('export_conversation', lang)}", "", f"_{t('export_exported', lang, when=_now())}_", ""]
    for record in export_records(history):
        if "notice" in record:
            body = record["content"].replace("\n", "\n> ")
            lines += [f"> **{record['notice']}**", ">", f"> {body}", ""]
            continue
        speaker = t("export_you" if record["role"] == "user" else "export_assistant", lang)
        lines += [f"## {speaker}", ""]
        lines += [f"📎 {name}" for name in record.get("attachments", [])]
        lines += [record["content"], ""]
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
