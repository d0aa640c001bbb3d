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


def error_notice(error: ChatError) -> Message:
    """What happened, what to do, and the request id to quote when asking for help."""
    body = error.user_message
    if error.request_id:
        body += f"\n\nRequest id: `{error.request_id}`"
    return notice(f"⚠️ {error.title}", body, prefix=ERROR_NOTICE_ID)


def failed(partial_text: str, error: ChatError) -> list[Message]:
    """The partial reply (kept) followed by the error notice."""
    reply = [{"role": "assistant", "content": partial_text}] if partial_text else []
    return reply + [error_notice(error)]


def finished(result: ChatResult) -> list[Message]:
    """The reply, a note if older messages were left out or the reply was cut, and the facts box."""
    messages: list[Message] = [{"role": "assistant", "content": result.text}] if result.text else []
    if not result.text:
        reason = f" (finish reason: {result.finish_reason})" if result.finish_reason else ""
        messages.append(notice("⚠️ Empty reply", f"The model returned no text{reason}. Try rephrasing."))
    if result.dropped_messages:
        why, other_way = (("are beyond the number of earlier messages this server sends", "") if result.dropped_by_limit
                          else ("did not fit the model's context window", ", or pick a model with a larger window,"))
        messages.append(
            notice(
                "✂️ Older messages left out",
                f"The {result.dropped_messages} oldest messages of this conversation {why}, so the model did not see "
                f"them for this reply. Start a new chat{other_way} to keep everything in view.",
            )
        )
    if result.finish_reason == "length":
        messages.append(notice("✂️ Reply cut short", "The reply reached Max tokens. Raise it in Settings, or say “continue”."))
    messages.append(notice(facts_title(result), facts_details(result), collapsed=True))
    return messages


def facts_title(result: ChatResult) -> str:
    """One compact line: tokens in → out · time to first token · tokens per second · cost."""
    parts = []
    if result.usage:
        parts.append(f"{result.usage.prompt_tokens:,} → {result.usage.completion_tokens:,} tokens")
    if result.time_to_first_token is not None:
        parts.append(f"{result.time_to_first_token:.2f} s to first token")
    if (speed := tokens_per_second(result)) is not None:
        parts.append(f"{speed:.0f} tokens/s")
    if result.cost_usd is not None:
        parts.append(f"${result.cost_usd:.5f}")
    return "📊 " + (" · ".join(parts) or f"{result.duration:.2f} s")


def facts_details(result: ChatResult) -> str:
    rows = [
        ("Model", result.model),
        ("Finish reason", result.finish_reason or "—"),
        ("Total time", f"{result.duration:.2f} s"),
        ("Credits used", f"{result.credits_used:g}" if result.credits_used is not None else "—"),
        ("Request id", f"`{result.inference_id or result.client_request_id}`"),
    ]
    return "\n".join(f"- **{name}:** {value}" for name, value in rows)


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


def to_markdown(history: Sequence[Mapping[str, Any]]) -> str:
    lines = ["# Conversation", "", f"_Exported {_now()}_", ""]
    for record in export_records(history):
        if "notice" in record:
            body = record["content"].replace("\n", "\n> ")
            lines += [f"> **{record['notice']}**", ">", f"> {body}", ""]
            continue
        speaker = "You" if record["role"] == "user" else "Assistant"
        lines += [f"## {speaker}", ""]
        lines += [f"📎 {name}" for name in record.get("attachments", [])]
        lines += [record["content"], ""]
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
