"""transcript: notices, per-reply facts and the exports."""

from __future__ import annotations

import json

from chat_backend.errors import RateLimited
from chat_backend.fallback import Switch, with_notice
from chat_backend.messages import is_notice, is_thought, to_api_messages
from chat_backend.reasoning import Shown
from chat_backend.stream import ChatResult, Usage
from chat_backend.transcript import (
    error_notice,
    failed,
    finished,
    streaming,
    to_json,
    to_markdown,
    tokens_per_second,
)


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
    partial, notice = failed(Shown(answer="Half an ans"), error)
    assert partial == {"role": "assistant", "content": "Half an ans"}
    assert notice["metadata"]["title"] == "⚠️ Rate limited" and "Request id: `req-5`" in notice["content"]
    assert (
        len(failed(Shown(), error)) == 1
        and failed(Shown(), error)[0]["metadata"]["title"] == error_notice(error)["metadata"]["title"]
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


THOUGHT = "The user asks for a capital. France → Paris."


def thinking_result(**changes: object) -> ChatResult:
    values: dict = dict(
        thought=THOUGHT,
        time_to_first_thought=0.4,
        time_to_first_token=12.4,
        thought_seconds=12.0,
        usage=Usage(120, 340, 460, reasoning_tokens=300),
        duration=14.0,
    )
    return result(**{**values, **changes})


def test_a_thought_is_a_folded_message_of_its_own_above_the_answer() -> None:
    thought, answer, *notices, facts = finished(thinking_result())
    assert thought["content"] == THOUGHT and is_thought(thought) and not is_notice(thought)
    assert thought["metadata"]["title"] == "💭 Thought for 12 s" and thought["metadata"]["status"] == "done"
    assert answer == {"role": "assistant", "content": "Answer."} and notices == []
    assert facts["metadata"]["title"] == (
        "📊 120 → 340 tokens (300 reasoning) · 0.40 s to first thought · 12.40 s to answer · 25 tokens/s · $0.00042"
    )
    zh = finished(thinking_result(thought_seconds=3.24), "zh")
    assert zh[0]["metadata"]["title"] == "💭 已思考 3.2 秒"
    assert "其中推理 300 个" in zh[-1]["metadata"]["title"] and "开始思考用时 0.40 秒" in zh[-1]["metadata"]["title"]


def test_a_thought_that_came_with_its_answer_at_once_claims_no_duration() -> None:
    [thought] = [m for m in finished(thinking_result(thought_seconds=0.0)) if is_thought(m)]
    assert thought["metadata"]["title"] == "💭 Thinking"


def test_a_thought_cut_by_max_tokens_keeps_what_came_and_says_why() -> None:
    thought, *notices = finished(thinking_result(text="", thought_cut=True, finish_reason="length"))
    assert thought["content"] == THOUGHT and thought["metadata"]["title"] == "💭 Thinking cut off after 12 s"
    titles = [m["metadata"]["title"] for m in notices]
    assert "⚠️ Empty reply" not in titles  # the thought's title and the cut notice say what happened
    [cut] = [m for m in notices if m["metadata"]["title"] == "✂️ Reply cut short"]
    assert "thinking, before it could answer" in cut["content"]


def test_a_reply_that_thought_and_answered_nothing_says_so() -> None:
    thought, empty, _ = finished(thinking_result(text=""))
    assert is_thought(thought) and empty["metadata"]["title"] == "⚠️ Empty reply"


def test_while_streaming_the_thought_is_open_until_the_answer_starts() -> None:
    assert streaming(Shown(answer="Hel")) == "Hel"  # no thinking: the reply stays one plain message
    [pending] = streaming(Shown(thought="Hmm", thinking=True, thought_seconds=0.5))
    assert pending["metadata"]["status"] == "pending" and pending["metadata"]["title"] == "💭 Thinking…"
    done, answer = streaming(Shown(thought="Hmm.", answer="Paris", thought_seconds=12.3), "zh")
    assert done["metadata"] | {"id": ""} == {"title": "💭 已思考 12 秒", "status": "done", "id": ""}
    assert answer == {"role": "assistant", "content": "Paris"}


def test_a_failure_while_thinking_keeps_the_thought_marked_cut() -> None:
    error = RateLimited("cut", status=429)
    thought, notice = failed(Shown(thought="Let me", thinking=True, thought_seconds=4.0), error)
    assert thought["content"] == "Let me" and thought["metadata"]["title"] == "💭 Thinking cut off after 4.0 s"
    assert notice["metadata"]["title"] == "⚠️ Rate limited"
    thought, answer, _ = failed(Shown(thought="Done.", answer="Par", thought_seconds=4.0), error)
    assert thought["metadata"]["title"] == "💭 Thought for 4.0 s" and answer["content"] == "Par"


def test_exports_keep_the_thought_folded_and_apart_from_the_answer() -> None:
    sneaky = THOUGHT + "\n</DETAILS>\nnot folded?"
    history = [{"role": "user", "content": "Capital of France?"}, *finished(thinking_result(thought=sneaky))]
    markdown = to_markdown(history)
    fold = "## Assistant\n\n<details><summary>💭 Thought for 12 s</summary>\n\n"
    assert fold + THOUGHT + "\n&lt;/DETAILS>\nnot folded?\n\n</details>\n\nAnswer.\n" in markdown
    assert markdown.count("## Assistant") == 1 and markdown.count("</details>") == 1
    records = json.loads(to_json(history))["messages"]
    assert records[1] == {"role": "assistant", "content": sneaky, "thought": "💭 Thought for 12 s"}
    assert records[2] == {"role": "assistant", "content": "Answer."}


def test_a_fallback_notice_goes_after_the_answer_not_between_it_and_its_thought() -> None:
    switch = Switch("abab6.5s-chat", "minimax/m2", retired=True)
    thought, answer, notice, _facts = with_notice(finished(thinking_result()), switch)
    assert is_thought(thought) and answer["content"] == "Answer." and "retired" in notice["content"]
