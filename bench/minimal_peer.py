"""The minimal peer: a plain streaming `gr.ChatInterface` over the same stand-in API and nothing else (no guard,
limits, metrics, settings or saved chats), with no limit on concurrent replies: what Gradio itself costs per
message, for `bench/run.py --compare ... --peer`.

python bench/minimal_peer.py BASE_URL PORT
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
import httpx

MODEL = "abab6.5s-chat"


def build(base_url: str) -> gr.ChatInterface:
    client = httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=None))

    async def respond(message: str, history: list[dict[str, Any]]) -> AsyncIterator[str]:
        messages = [
            *({"role": m["role"], "content": m["content"]} for m in history),
            {"role": "user", "content": message},
        ]
        body = {"model": MODEL, "messages": messages, "stream": True}
        text = ""
        async with client.stream(
            "POST", "/chat/completions", json=body, headers={"Authorization": "Bearer bench"}
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:]).get("choices") or [{}]
                    text += choices[0].get("delta", {}).get("content") or ""
                    yield text

    return gr.ChatInterface(respond, concurrency_limit=None)


if __name__ == "__main__":
    build(sys.argv[1]).launch(server_port=int(sys.argv[2]))
