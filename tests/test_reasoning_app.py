"""The model's thinking through the launched app's API (gradio_client), in every shape the stand-in sends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gradio_client import Client

from chat_backend.messages import THOUGHT_ID
from tests.app_process import AppProcess
from tests.fake_api import THINKING_SHAPES, FakeAPI, Reply
from tests.helpers import DEFAULTS, chat, gradio_client, notices

THOUGHT = "The user asks for the capital of France. That is Paris; say so briefly."
ANSWER = "The capital of France is Paris."
TAGS = ("<think>", "</think>", "<mm:think>", "</mm:think>")


@pytest.fixture
def client(live_app: AppProcess) -> Client:
    return gradio_client(live_app.url)


def thoughts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if str((m.get("metadata") or {}).get("id", "")).startswith(THOUGHT_ID)]


def answers(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if not m.get("metadata")]


def wait_for(job: Any, seen: Any, timeout: float = 10.0) -> list[Any]:
    """Poll what the client has received until `seen(outputs)` holds; the outputs so far."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outputs = [reply for reply, _ in job.outputs()]
        if seen(outputs):
            return outputs
        time.sleep(0.05)  # polling what the client has received so far
    raise TimeoutError(f"not seen within {timeout}s: {[reply for reply, _ in job.outputs()]}")


@pytest.mark.parametrize("shape", THINKING_SHAPES)
def test_the_thought_streams_open_then_folds_above_an_answer_free_of_it(
    client: Client, app_api: FakeAPI, shape: str
) -> None:
    app_api.script(
        Reply(text=ANSWER, thinking=THOUGHT, thinking_shape=shape, delay=0.02, stall_after=6),  # stalls while thinking
        Reply(text="About 2.1 million."),
    )
    job = client.submit({"text": "Capital of France?", "files": []}, *{**DEFAULTS, "model": "minimax/m2"}.values())

    def thinking_shown(outputs: list[Any]) -> bool:
        return any(
            isinstance(out, list) and thoughts(out) and "capital" in thoughts(out)[0]["content"] for out in outputs
        )

    live = wait_for(job, thinking_shown)[-1]
    [pending] = thoughts(live)
    assert pending["metadata"]["status"] == "pending" and pending["metadata"]["title"] == "💭 Thinking…"
    assert pending["content"].startswith("The user asks") and not answers(live)  # no answer yet, no tag anywhere
    app_api.release()
    final, _ = job.result(timeout=30)
    outputs = [reply for reply, _ in job.outputs()]
    shown_answers = [a["content"] for out in outputs if isinstance(out, list) for a in answers(out)]
    shown_answers += [out for out in outputs if isinstance(out, str)]
    assert shown_answers and all(ANSWER.startswith(text) for text in shown_answers)  # never a thought, never a tag
    [thought], [answer] = thoughts(final), answers(final)
    assert final.index(thought) < final.index(answer)
    assert thought["content"] == THOUGHT and answer["content"] == ANSWER
    assert thought["metadata"]["status"] == "done" and thought["metadata"]["title"].startswith("💭 Thought for ")
    facts = notices(final)[-1]["metadata"]["title"]
    assert "(14 reasoning)" in facts and "s to first thought" in facts and "s to answer" in facts
    assert not any(tag in str(final) for tag in TAGS)

    chat(client, "Population?")  # the next turn: the same session's history, sent back without the thought
    second = app_api.chat_requests()[1].body["messages"]
    assert second == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Population?"},
    ]


def test_a_whole_answer_with_thinking_shows_it_folded_without_a_duration(client: Client, app_api: FakeAPI) -> None:
    """Not streamed: MiniMax M2's own example answer, `<think>…</think>` then the answer in one `content`."""
    app_api.script(Reply(body=M2_PAGE_EXAMPLE))
    _, final = chat(client, "Hello", model="minimax/m2")
    [thought], [answer] = thoughts(final), answers(final)
    assert (
        thought["content"].strip().startswith('The user says "Hello"') and thought["metadata"]["title"] == "💭 Thinking"
    )
    assert answer["content"] == "Hello! How can I help you today?"
    assert "(150 reasoning)" in notices(final)[-1]["metadata"]["title"]


def test_max_tokens_spent_thinking_keeps_the_thought_and_says_why_there_is_no_answer(
    client: Client, app_api: FakeAPI
) -> None:
    app_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="think"))
    _, final = chat(client, "Capital?", model="minimax/m2", max_tokens=5)
    [thought] = thoughts(final)
    assert thought["content"] == "The user asks for the" and "cut off" in thought["metadata"]["title"]
    assert not answers(final)
    assert any("spent all of Max tokens thinking" in n["content"] for n in notices(final))


def test_a_stream_cut_while_thinking_keeps_the_thought_marked_cut(client: Client, app_api: FakeAPI) -> None:
    app_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="reasoning_content", drop_after=4))
    _, final = chat(client, "Capital?", model="minimax/m2")
    [thought] = thoughts(final)
    assert thought["content"] == "The user asks for" and "cut off" in thought["metadata"]["title"]
    assert "cut" in notices(final)[-1]["content"]
    chat(client, "Again?")
    assert [m["content"] for m in app_api.chat_requests()[1].body["messages"][1:]] == ["Again?"]


def test_the_thought_speaks_the_visitors_language(live_app: AppProcess, app_api: FakeAPI) -> None:
    app_api.script(Reply(text=ANSWER, thinking=THOUGHT, thinking_shape="mm:think", delay=0.01))
    zh = gradio_client(live_app.url, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    _, final = chat(zh, "法国的首都？", model="minimax/minimax-m3")
    [thought] = thoughts(final)
    assert thought["metadata"]["title"].startswith("💭 已思考 ") and thought["metadata"]["title"].endswith(" 秒")
    assert "开始思考用时" in notices(final)[-1]["metadata"]["title"]


M2_PAGE_EXAMPLE = {  # the response on the AI/ML API's page for minimax/m2 (aimlapi/api-docs, 2026-08-21)
    "id": "0557b8f7fa197172a75531a82ae6c887",
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {
                "role": "assistant",
                "content": '<think>\nThe user says "Hello". This is a simple greeting. There\'s no request. According '
                'to policy, we respond politely, perhaps ask how we can help. So answer "Hello! How can I assist you '
                'today?" Should keep tone friendly.\n\nThus final answer.\n</think>\n\n'
                "Hello! How can I help you today?",
            },
        }
    ],
    "created": 1762166263,
    "model": "MiniMax-M2",
    "usage": {
        "prompt_tokens": 26,
        "completion_tokens": 159,
        "total_tokens": 185,
        "completion_tokens_details": {"reasoning_tokens": 150},
    },
}
