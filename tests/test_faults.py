"""The fault matrix, through the launched app: every failure the backend knows shows a notice, keeps any
partial reply, lets the next message in the same conversation succeed, and leaves other chats alone."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import chat, gradio_client, notices

PARTIAL = "one two three four five six seven eight"
BYSTANDER = " ".join(f"calm{i}" for i in range(40))
FAULTS: dict[str, tuple[list[Reply], str]] = {
    "400": ([Reply(status=400)], "rejected the request"),
    "401": ([Reply(status=401)], "key was rejected"),
    "403": ([Reply(status=403)], "run out of credits"),
    "404": ([Reply(status=404)], "404"),
    "429": ([Reply(status=429, headers={"Retry-After": "0"})] * 3, "rate-limiting"),
    "500": ([Reply(status=500)] * 3, "internal error"),
    "502": ([Reply(status=502)] * 3, "gateway"),
    "503": ([Reply(status=503)] * 3, "temporarily unavailable"),
    "504": ([Reply(status=504)], "too long"),
    "refused": ([Reply(abort=True)], "failed before a reply arrived"),
    "stall": ([Reply(text=PARTIAL, stall_after=3)], "sent nothing for 3 s"),
    "reset": ([Reply(text=PARTIAL, reset_after=3)], "cut"),
    "drop": ([Reply(text=PARTIAL, drop_after=3)], "cut"),
    "html-page": ([Reply(status=502, body="<html><h1>502</h1></html>", content_type="text/html")] * 3, "web page"),
    "malformed-stream": ([Reply(raw_stream=b'data: {"choices": [{"delta": {"content": "one two thr')], "garbled"),
    "error-in-stream": ([Reply(text=PARTIAL, stream_error={"message": "Model overloaded"})], "Model overloaded"),
}
MID_STREAM = {"stall", "reset", "drop", "error-in-stream"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_fault_is_explained_and_the_conversation_and_others_go_on(
    fault: str, live_app: AppProcess, app_api: FakeAPI
) -> None:
    replies, words = FAULTS[fault]
    app_api.script_for(f"bystander {fault}", Reply(text=BYSTANDER, delay=0.03))
    app_api.script_for(f"victim {fault}", *replies)
    bystander: dict[str, Any] = {}
    other = threading.Thread(
        target=lambda: bystander.update(result=chat(gradio_client(live_app.url), f"bystander {fault}"))
    )
    other.start()
    app_api.wait_for_message(f"bystander {fault}")

    victim = gradio_client(live_app.url)
    _, failed = chat(victim, f"victim {fault}")
    [notice] = notices(failed)
    assert words in notice["content"] and "Request id" in notice["content"]
    if fault in MID_STREAM:
        assert failed[0]["content"].startswith("one two"), "the partial reply was not kept"
    _, recovered = chat(victim, f"next after {fault}")
    assert recovered[0]["content"] == "Hello from the stand-in."
    assert all("error" not in n["metadata"]["id"] for n in notices(recovered))

    other.join(30)
    _, calm = bystander["result"]
    assert calm[0]["content"] == BYSTANDER and all("error" not in n["metadata"]["id"] for n in notices(calm))
