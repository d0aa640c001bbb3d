"""transcript: notices, per-reply facts and the exports."""

from __future__ import annotations

import json

from chat_backend.errors import RateLimited
from chat_backend.messages import is_notice, to_api_messages
from chat_backend.stream import ChatResult, Usage
from chat_backend.transcript import error_notice, failed, finished, to_json, to_markdown, tokens_per_second


def result(**changes: object) -> ChatResult:
    values: dict = dict(
        text="Answer.",
        finish_reason="stop",
        usage=Usage(120, 340, 460),
        cost_usd=0.00042,
        credits_used=840,
        model="MiniMax-Text-01",
        client_request_id="client-1",
        inference_id="inf-9",
        time_to_first_token=0.25,
        duration=4.25,
        dropped_messages=0,
    )
    values.update(changes)
    return ChatResult(**values)


def test_facts_give_tokens_first_token_speed_and_cost() -> None:
    *reply, facts = finished(result())
    assert reply == [{"role": "assistant", "content": "Answer."}]
    assert facts["metadata"]["title"] == "📊 120 → 340 tokens · 0.25 s to first token · 85 tokens/s · $0.00042"
    assert facts["metadata"]["status"] == "done" and "`inf-9`" in facts["content"]
    assert is_notice(facts)


def test_facts_leave_out_what_the_api_did_not_report() -> None:
    title = finished(result(usage=None, cost_usd=None))[-1]["metadata"]["title"]
    assert title == "📊 0.25 s to first token"
    assert tokens_per_second(result(duration=0.25)) is None


def test_dropped_messages_cut_replies_and_empty_replies_are_said() -> None:
    titles = [
        m.get("metadata", {}).get("title", "") for m in finished(result(dropped_messages=4, finish_reason="length"))
    ]
    assert any("Older messages left out" in t for t in titles) and any("cut short" in t for t in titles)
    empty = finished(result(text="", finish_reason="content_filter"))
    assert "content_filter" in empty[0]["content"] and is_notice(empty[0])


def test_messages_left_out_by_the_history_limit_do_not_blame_the_window() -> None:
    [limit] = [
        m["content"] for m in finished(result(dropped_messages=4, dropped_by_limit=True)) if "4 oldest" in m["content"]
    ]
    [window] = [m["content"] for m in finished(result(dropped_messages=4)) if "4 oldest" in m["content"]]
    assert "context window" not in limit and "earlier messages this server sends" in limit
    assert "context window" in window


def test_a_failure_keeps_the_partial_text_before_the_notice() -> None:
    error = RateLimited("The API is rate-limiting requests right now.", status=429, request_id="req-5")
    partial, notice = failed("Half an ans", error)
    assert partial == {"role": "assistant", "content": "Half an ans"}
    assert notice["metadata"]["title"] == "⚠️ Rate limited" and "Request id: `req-5`" in notice["content"]
    assert (
        len(failed("", error)) == 1
        and failed("", error)[0]["metadata"]["title"] == error_notice(error)["metadata"]["title"]
    )


def test_notices_never_go_back_to_the_model() -> None:
    history = [{"role": "user", "content": "Q"}, *finished(result(dropped_messages=2))]
    assert to_api_messages(history, "next") == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Answer."},
        {"role": "user", "content": "next"},
    ]


def test_exports_hold_the_conversation_attachments_and_notices() -> None:
    history = [
        {
            "role": "user",
            "content": [
                {"type": "file", "file": {"path": "/tmp/x/report.pdf", "orig_name": "report.pdf"}},
                {"type": "text", "text": "Summarise"},
            ],
            "metadata": None,
            "options": None,
        },
        *finished(result(text="A summary.")),
    ]
    markdown = to_markdown(history)
    assert "## You\n\n📎 report.pdf\nSummarise" in markdown and "## Assistant\n\nA summary." in markdown
    assert "> **📊 120 → 340 tokens" in markdown
    exported = json.loads(to_json(history))
    assert exported["messages"][0] == {"role": "user", "content": "Summarise", "attachments": ["report.pdf"]}
    assert exported["messages"][2]["notice"].startswith("📊")
