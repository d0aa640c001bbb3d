"""app: the Gradio chat UI around chat_backend. Wiring only: no HTTP, no JSON, no parsing.

`python app.py` serves http://127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces); `gradio app.py` reloads on
edits. Nothing here needs the network or a key to render the page.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from chat_backend import ChatClient, ChatError, ChatSettings, load_settings, to_api_messages, transcript
from chat_backend.budget import DailyBudget, host_pays
from chat_backend.catalogue import ModelInfo
from chat_backend.config import PENALTY_RANGE, TEMPERATURE_RANGE, TOP_P_RANGE
from chat_backend.errors import ConfigError
from chat_backend.limits import Guard, visitor_address
from chat_backend.messages import text_length
from chat_backend.metrics import Replies
from chat_backend.pacing import UpdateBudget, paced, weight_for
from chat_backend.store import open_store
from web import health

log = logging.getLogger("app")
ASSETS = Path(__file__).parent / "assets"
LATEX = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]
QUEUE_IDLE_POLL = 0.005  # seconds between looks at an empty queue; tests/test_health.py checks Gradio reads it
ATTACHMENT_TYPES = [".txt", ".md", ".csv", ".json", ".pdf", ".py", ".js", ".ts", ".html", ".xml", ".yaml", "image"]
EXAMPLES = [
    {"text": "Read this report. What share of demand is the fish market, and why does the battery matter "
             "more than the panels for it?", "files": [str(ASSETS / "examples" / "harbour-microgrid-report.md")]},
    {"text": "A bat and a ball cost 1.10 in total. The bat costs 1.00 more than the ball. How much is the ball? "
             "Reason step by step, then check your answer."},
    {"text": "Explain the Cauchy–Schwarz inequality with one worked example, using LaTeX."},
    {"text": "Write a Python function that merges overlapping intervals, with tests."},
]

try:
    SETTINGS = load_settings()
except ConfigError as err:
    raise SystemExit(f"Configuration error: {err.user_message}") from None
CLIENT = ChatClient(SETTINGS)
UPDATES = UpdateBudget(SETTINGS.update_budget)
GUARD = Guard(SETTINGS.rate_per_session, SETTINGS.rate_per_address, SETTINGS.max_upstream, SETTINGS.redis_url)
BUDGET = DailyBudget(SETTINGS.daily_budget_usd, open_store(SETTINGS))
REPLIES = Replies()


def model_choices(current: str) -> list[tuple[str, str]]:
    """Dropdown entries, MiniMax first; a name the catalogue does not list is marked as such."""
    choices = [(_label(model), model.id) for model in CLIENT.catalogue.models()]
    if current not in {value for _, value in choices}:
        choices.insert(0, (_label(CLIENT.catalogue.info(current)), current))
    return choices


def _label(model: ModelInfo) -> str:
    if model.deprecated:
        return f"{model.id} (retired by the API)"
    if not model.listed:
        return f"{model.id} (not in the catalogue)"
    return model.id


def respond(
    message: str | dict[str, Any],
    history: list[dict[str, Any]],
    model: str,
    system_prompt: str,
    temperature: float,
    top_p: float,
    max_tokens: float,
    presence_penalty: float,
    frequency_penalty: float,
    seed: float | None,
    user_key: str,
    request: gr.Request,
) -> Iterator[str | list[dict[str, Any]]]:
    """Stream one reply; every failure becomes a notice in the chat, since raising would freeze the textbox."""
    stream = None
    reply = REPLIES.start()
    try:
        reply.admit()  # refused while this replica drains before a restart
        settings = ChatSettings(
            model=model or SETTINGS.model,
            system_prompt=system_prompt or "",
            max_tokens=int(max_tokens or 1),
            temperature=temperature,
            top_p=top_p,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            seed=int(seed or 0),
        )
        messages = to_api_messages(
            history, message, settings.system_prompt,
            max_attachment_bytes=SETTINGS.max_attachment_bytes, max_pdf_pages=SETTINGS.max_pdf_pages,
            max_message_chars=SETTINGS.max_message_chars,
        )
        host_pays_this = host_pays(user_key, SETTINGS)
        if host_pays_this:
            BUDGET.check()
        with GUARD.admit(request.session_hash or "", client_address(request)):
            stream = CLIENT.stream_chat(messages, settings, user_key)
            try:
                with stream, UPDATES.share(weight_for(text_length(messages))) as interval:
                    yield from paced(stream, interval, flush=False)  # the final message below has the whole text
            finally:
                if host_pays_this and stream.result:
                    BUDGET.record(stream.result, text_length(messages))
        reply.finished(stream.result)
        yield transcript.finished(stream.result)
    except Exception as error:
        if not isinstance(error, ChatError):
            log.exception("unexpected failure while answering")
            if os.environ.get("APP_RAISE_ERRORS"):
                raise
            error = ChatError("Something went wrong on this server. Send the message again.")
        reply.failed(error)
        yield transcript.failed(stream.text if stream else "", error)
    finally:
        reply.close()


def client_address(request: gr.Request) -> str:
    """The visitor's address, read past `TRUSTED_PROXY_HOPS` proxies (rules in `chat_backend.limits`)."""
    headers = request.headers
    forwarded = ",".join(headers.getlist("x-forwarded-for")) if hasattr(headers, "getlist") else ""
    return visitor_address(forwarded, request.client.host if request.client else "", SETTINGS.trusted_proxy_hops)


def temperature_for(model: str, temperature: float) -> dict[str, Any]:
    """Narrow the temperature slider to what the chosen model accepts."""
    highest = CLIENT.catalogue.info(model).temperature_max
    return gr.update(maximum=highest, value=min(temperature, highest))


def export(history: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the conversation as Markdown and JSON for the two download buttons."""
    folder = Path(tempfile.mkdtemp(prefix="chat-export-"))
    markdown, data = folder / "conversation.md", folder / "conversation.json"
    markdown.write_text(transcript.to_markdown(history), encoding="utf-8")
    data.write_text(transcript.to_json(history), encoding="utf-8")
    return gr.update(value=str(markdown), visible=True), gr.update(value=str(data), visible=True)


with gr.Blocks(title="MiniMax Chat", fill_height=True, delete_cache=(3600, 3600)) as demo:
    with gr.Sidebar(label="Settings", position="right", open=False):
        gr.Markdown("### Settings")
        model_box = gr.Dropdown(
            model_choices(SETTINGS.model), value=SETTINGS.model, label="Model", allow_custom_value=True, elem_id="model",
            info="MiniMax models first. abab6.5s-chat is retired by the API; pick a successor if it fails.",
        )
        system_box = gr.Textbox("You are a helpful assistant.", label="System prompt", lines=3,
                                info="Sent first with every message.")
        temperature_box = gr.Slider(*TEMPERATURE_RANGE, value=1.0, step=0.05, label="Temperature")
        top_p_box = gr.Slider(*TOP_P_RANGE, value=0.95, step=0.01, label="Top-p")
        max_tokens_box = gr.Number(2048, label="Max tokens", minimum=1, maximum=1_000_000, precision=0,
                                   info="Longest reply allowed.")
        with gr.Accordion("Advanced", open=False):
            presence_box = gr.Slider(*PENALTY_RANGE, value=0.0, step=0.1, label="Presence penalty")
            frequency_box = gr.Slider(*PENALTY_RANGE, value=0.0, step=0.1, label="Frequency penalty")
            seed_box = gr.Number(0, label="Seed (0 = random)", minimum=0, precision=0)
        key_box = gr.Textbox(
            label="Your own AI/ML API key (optional)", type="password", placeholder="Uses the server's key when empty",
            info="Kept only in this browser tab and sent with each message; never stored or logged.",
        )
        gr.Markdown("### Export")
        export_button = gr.Button("Export conversation", size="sm")
        with gr.Row():
            markdown_download = gr.DownloadButton("Markdown", visible=False, size="sm", elem_id="export-md")
            json_download = gr.DownloadButton("JSON", visible=False, size="sm", elem_id="export-json")

    chat = gr.ChatInterface(
        respond,
        multimodal=True,
        chatbot=gr.Chatbot(
            label="MiniMax",
            latex_delimiters=LATEX,
            buttons=["copy", "copy_all"],
            avatar_images=(None, str(ASSETS / "avatar-assistant.png")),
            placeholder="**MiniMax Chat**<br>Ask anything, or attach a document, code or an image.",
            scale=1,
        ),
        textbox=gr.MultimodalTextbox(
            file_types=ATTACHMENT_TYPES, file_count="multiple", placeholder="Message MiniMax…",
            submit_btn=True, stop_btn=True, autofocus=True, elem_id="chat-input",
        ),
        additional_inputs=[model_box, system_box, temperature_box, top_p_box, max_tokens_box,
                           presence_box, frequency_box, seed_box, key_box],
        examples=[[example] + [None] * 9 for example in EXAMPLES],
        title="MiniMax Chat",
        description="Chat with MiniMax models on the AI/ML API. Settings are in the panel on the right.",
        editable=True,
        save_history=True,
        concurrency_limit=SETTINGS.concurrency,
        api_name="chat",
        api_visibility="private" if SETTINGS.hide_api else "public",
        fill_height=True,
    )
    ui_only: dict[str, Any] = {"queue": False, "api_visibility": "undocumented"}
    model_box.change(temperature_for, [model_box, temperature_box], temperature_box, **ui_only)
    export_button.click(export, chat.chatbot, [markdown_download, json_download], **ui_only)
    demo.load(lambda current: gr.update(choices=model_choices(current)), model_box, model_box, **ui_only)

demo.queue(max_size=SETTINGS.queue_size, default_concurrency_limit=SETTINGS.concurrency)
demo._queue.sleep_when_free = QUEUE_IDLE_POLL  # Gradio's 1 ms costs an idle process ~30-60 ms of CPU a second


def main() -> None:
    parser = argparse.ArgumentParser(description="MiniMax Chat")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
    CLIENT.catalogue.refresh_in_background()
    signal.signal(signal.SIGTERM, _drain)
    demo.launch(
        server_name="0.0.0.0" if SETTINGS.on_spaces else os.environ.get("GRADIO_SERVER_NAME"),
        share=args.share or SETTINGS.share,
        auth=SETTINGS.login,
        max_threads=SETTINGS.concurrency + 32,
        max_file_size=SETTINGS.max_attachment_bytes,
        favicon_path=str(ASSETS / "favicon.png"),
        theme=gr.themes.Soft(primary_hue="pink"),
        footer_links=["gradio", "settings"] if SETTINGS.hide_api else None,
        run_history=False,  # it would keep every input, visitors' own keys included, in their browser
        app_kwargs={"routes": health.routes(REPLIES, SETTINGS.metrics_token)},
    )
    CLIENT.close()


def _drain(signum: int, frame: object) -> None:
    """SIGTERM: turn not-ready, let replies in flight finish for up to DRAIN_SECONDS, then stop the server.

    Gradio installs no signal handler; the KeyboardInterrupt raised here ends its `block_thread` loop, which
    closes the server. A second SIGTERM while draining stops at once.
    """
    if REPLIES.draining:
        raise KeyboardInterrupt
    log.info("SIGTERM: draining %d replies for up to %gs", REPLIES.active, SETTINGS.drain_seconds)
    if not REPLIES.drain(SETTINGS.drain_seconds):
        log.warning("stopping with %d replies still streaming", REPLIES.active)
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
