"""app: the Gradio chat UI around chat_backend. Wiring only: no HTTP, no JSON, no parsing.

`python app.py` serves http://127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces); `gradio app.py` reloads on
edits. Nothing here needs the network or a key to render the page.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
from anyio import to_thread
from gradio.utils import get_upload_folder
from limits import RateLimitItemPerMinute
from starlette.middleware import Middleware

from chat_backend import ChatClient, ChatError, ChatSettings, load_settings, offline_api, transcript
from chat_backend.attachments import Attachments
from chat_backend.budget import DailyBudget, host_pays
from chat_backend.catalogue import ModelInfo
from chat_backend.config import DEFAULT_MAX_TOKENS, PENALTY_RANGE, TEMPERATURE_RANGE, TOP_P_RANGE
from chat_backend.errors import ConfigError
from chat_backend.fallback import FallbackStream, Switch, with_notice
from chat_backend.i18n import browser_translations, language, t
from chat_backend.messages import build_messages, text_length
from chat_backend.metrics import Replies
from chat_backend.pacing import QUIET, Pacer, UpdateBudget, weight_for
from chat_backend.quotas import Guard, Windows, scope_address
from chat_backend.relay import newest_in_thread
from chat_backend.shared_links import Shares, link_choices, remember
from chat_backend.store import open_store
from web import health, share_page
from web.guard import RequestGuard, inside
from web.login import LoginThrottle
from web.page_policy import PagePolicy
from web.sessions import SessionExpiry
from web.volume import VolumeQuota

log = logging.getLogger("app")
ASSETS = Path(__file__).parent / "assets"
LATEX: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]
QUEUE_IDLE_POLL = 0.005  # seconds between looks at an empty queue; tests/test_health.py checks Gradio reads it
ATTACHMENT_TYPES = [".txt", ".md", ".csv", ".json", ".pdf", ".py", ".js", ".ts", ".html", ".xml", ".yaml", "image"]
I18N = gr.I18n(**browser_translations())
EXAMPLES = [
    {
        "text": "Read this report. What share of demand is the fish market, and why does the battery matter "
        "more than the panels for it?",
        "files": [str(ASSETS / "examples" / "harbour-microgrid-report.md")],
    },
    {
        "text": "A bat and a ball cost 1.10 in total. The bat costs 1.00 more than the ball. How much is the ball? "
        "Reason step by step, then check your answer."
    },
    {"text": "Explain the Cauchy–Schwarz inequality with one worked example, using LaTeX."},
    {"text": "Write a Python function that merges overlapping intervals, with tests."},
]
STYLE = (ASSETS / "reach.css").read_text(encoding="utf-8")  # phone layout, contrast, wrapping
SCRIPT = (ASSETS / "reach.js").read_text(encoding="utf-8")  # folding on phones, names for unnamed buttons

EXPORTS_PER_MINUTE = 6  # per client address; identical exports share one copy on disk

try:
    SETTINGS = load_settings()
except ConfigError as err:
    raise SystemExit(f"Configuration error: {err.user_message}") from None
if SETTINGS.offline or "--offline" in sys.argv[1:]:  # read here, before the client below is made
    SETTINGS = replace(SETTINGS, base_url=offline_api.start(), api_key=offline_api.KEY, offline=True)
CLIENT = ChatClient(SETTINGS)
UPDATES = UpdateBudget(SETTINGS.update_budget)
GUARD = Guard(SETTINGS.rate_per_session, SETTINGS.rate_per_address, SETTINGS.max_upstream, SETTINGS.redis_url)
STORE = open_store(SETTINGS)
BUDGET = DailyBudget(SETTINGS.daily_budget_usd, STORE)
ATTACHMENTS = Attachments.under(  # only what Gradio received as uploads (or cached from our examples) is read
    [get_upload_folder(), ASSETS / "examples"],
    max_file_bytes=SETTINGS.max_attachment_bytes,
    max_pdf_pages=SETTINGS.max_pdf_pages,
    max_per_message=SETTINGS.max_attachments_per_message,
    max_message_bytes=SETTINGS.max_message_attachment_bytes,
    max_request_image_bytes=SETTINGS.max_request_image_bytes,
    max_images_per_request=SETTINGS.max_images_per_request,
    store=STORE,
    text_ttl=SETTINGS.attachment_text_ttl,
)
SHARES = Shares(STORE, SETTINGS)
SHARE_ROUTES = share_page.routes(SHARES) if SETTINGS.share_links else []  # /share/<id>, beside the UI
EXPORTS, EXPORT_RATE = Windows(SETTINGS.redis_url), RateLimitItemPerMinute(EXPORTS_PER_MINUTE)
REPLIES = Replies()


def model_choices(current: str, lang: str = "en") -> list[tuple[str, str]]:
    """Dropdown entries, MiniMax first; a name the catalogue does not list is marked as such."""
    choices = [(_label(model, lang), model.id) for model in CLIENT.catalogue.models()]
    if current not in {value for _, value in choices}:
        choices.insert(0, (_label(CLIENT.catalogue.info(current), lang), current))
    return choices


def visitor_models(current: str, request: gr.Request) -> dict[str, Any]:
    """The model list as the page loads, its notes in the visitor's language."""
    return gr.update(choices=model_choices(current, language(request.headers.get("accept-language"))))


def _label(model: ModelInfo, lang: str) -> str:
    if model.deprecated:
        return t("model_label_retired", lang, model=model.id)
    if not model.listed:
        return t("model_label_unlisted", lang, model=model.id)
    return model.id


async def respond(
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
) -> AsyncIterator[tuple[str | list[dict[str, Any]], Any]]:
    """Stream one reply, and the Model setting (changed only if the fallback model answered); every failure
    becomes a notice in the chat, since raising would freeze the textbox.

    Async, so that Stop cancels it at its `await` even while the model is silent: leaving `with stream` then
    closes the upstream request at once. The stream itself is read in a thread of its own (see `paced_reply`).
    """
    stream: FallbackStream | None = None
    notes: list[dict[str, Any]] = []
    lang = language(request.headers.get("accept-language"))
    reply = REPLIES.start()
    try:
        reply.admit()  # refused while this replica drains before a restart
        settings = ChatSettings(
            model=model or SETTINGS.model,
            system_prompt=system_prompt or "",
            max_tokens=int(max_tokens) if max_tokens else DEFAULT_MAX_TOKENS,  # a cleared field means the default
            temperature=temperature,
            top_p=top_p,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            seed=int(seed or 0),
        )
        built = await to_thread.run_sync(
            lambda: build_messages(  # attachments are read off the event loop
                history,
                message,
                settings.system_prompt,
                attachments=ATTACHMENTS,
                vision=CLIENT.catalogue.info(settings.model).vision,
                max_message_chars=SETTINGS.max_message_chars,
            )
        )
        notes = [transcript.notice(t("note_title", lang), note.render(lang)) for note in built.notes]
        messages = built.messages
        if notes:
            yield notes, gr.skip()  # before anything is sent, so nothing is billed unannounced
        host_pays_this = host_pays(user_key, SETTINGS)
        if host_pays_this:
            BUDGET.check()
        # checked before the limits: a message refused here (no key, settings the model refuses) sends nothing
        checked = FallbackStream(CLIENT, messages, settings, user_key, SETTINGS.fallback_model)
        with GUARD.admit(request.session_hash or "", client_address(request)):
            stream = checked
            prompt_chars = text_length(messages)
            budget = BUDGET if host_pays_this else None
            pacer = Pacer(UPDATES.interval)
            with stream:
                async for text in newest_in_thread(
                    lambda: paced_reply(stream, pacer, prompt_chars, budget),
                    name="reply",
                    quiet=QUIET,
                    on_quiet=pacer.due,
                ):
                    yield text, gr.skip()
        result = stream.result
        assert result is not None, "a stream that ended without raising has its result"
        reply.finished(result)
        finished = with_notice(transcript.finished(result, lang), stream.switch, lang)
        yield notes + finished, model_after(stream.switch)
    except Exception as error:
        if not isinstance(error, ChatError):
            log.exception("unexpected failure while answering")
            if os.environ.get("APP_RAISE_ERRORS"):
                raise
            error = ChatError(t("unexpected"), key="unexpected")
        reply.failed(error)
        switch = stream.switch if stream else None
        failure = transcript.failed(stream.text if stream else "", error, lang)
        yield notes + with_notice(failure, switch, lang), model_after(switch)
    finally:
        reply.close()


def paced_reply(stream: FallbackStream, pacer: Pacer, prompt_chars: int, budget: DailyBudget | None) -> Iterator[str]:
    """The text so far, paced by the server-wide update budget; runs in the reply's own thread (`respond`
    asks the same `pacer` for held-back text while the stream is quiet).

    The reply's cost is recorded here, when the stream has really ended (finished, failed or stopped), since
    after a Stop the event loop has moved on before the reader thread has its result.
    """
    try:
        with UPDATES.share(weight_for(prompt_chars)):
            yield from pacer.updates(stream, flush=False)  # the final message in `respond` has the whole text
    finally:
        stream.close()  # a no-op if it ended; otherwise its own `finally` sets `result`
        if budget and stream.result:
            budget.record(stream.result, prompt_chars)


def model_after(switch: Switch | None) -> Any:
    """The Model setting follows a switch to the fallback model, so the next message skips the refused one."""
    return gr.update(value=switch.answered_by) if switch else gr.skip()


def client_address(request: gr.Request) -> str:
    """The visitor's address, read past `TRUSTED_PROXY_HOPS` proxies (rules in `chat_backend.quotas`)."""
    assert request.request is not None, "Gradio hands every handler the HTTP request it came with"
    return scope_address(request.request.scope, SETTINGS.trusted_proxy_hops)


def temperature_for(model: str, temperature: float) -> dict[str, Any]:
    """Narrow the temperature slider to what the chosen model accepts."""
    highest = CLIENT.catalogue.info(model).temperature_max
    return gr.update(maximum=highest, value=min(temperature, highest))


def export(history: list[dict[str, Any]], request: gr.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the conversation as Markdown and JSON for the two download buttons, inside Gradio's cache only,
    so CACHE_CLEAR_MINUTES removes them; at most EXPORTS_PER_MINUTE per address, and the body limit caps size."""
    address, lang = client_address(request), language(request.headers.get("accept-language"))
    wait = EXPORTS.wait_needed(EXPORT_RATE, "export", address)
    if wait:
        raise gr.Error(t("exports_too_often", lang, seconds=math.ceil(wait)), print_exception=False)
    EXPORTS.hit(EXPORT_RATE, "export", address)
    markdown = _cached_file("conversation.md", transcript.to_markdown(history, lang))
    data = _cached_file("conversation.json", transcript.to_json(history))
    return gr.update(value=markdown, visible=True), gr.update(value=data, visible=True)


def share(
    history: list[dict[str, Any]],
    model: str,
    system_prompt: str,
    include_prompt: bool,
    links: dict[str, Any] | None,
    user_key: str,
    request: gr.Request,
) -> tuple[Any, ...]:
    """Store a snapshot and show its link (made absolute in the browser); a refusal shows where the link would."""
    lang = language(request.headers.get("accept-language"))
    try:
        shared = SHARES.create(
            history,
            model=model or SETTINGS.model,
            system_prompt=system_prompt if include_prompt else "",
            session=request.session_hash or "",
            hidden=(SETTINGS.api_key, user_key),
        )
    except ChatError as error:
        refusal = gr.update(value=f"⚠️ {error.message(lang)}", visible=True)
        return gr.update(visible=False), refusal, links, gr.skip(), gr.skip()
    links = remember(links, shared)
    return (
        gr.update(value=f"share/{shared.id}", visible=True),
        gr.update(value=shared.summary(lang), visible=True),
        links,
        *own_links(links),
    )


def unshare(share_id: str, links: dict[str, Any] | None, request: gr.Request) -> tuple[Any, ...]:
    links, note = SHARES.delete_own(links, share_id, language(request.headers.get("accept-language")))
    return links, *own_links(links), gr.update(value=note, visible=True), gr.update(value="", visible=False)


def own_links(links: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The list of this browser's links and its Delete button, both hidden while there are none."""
    choices = link_choices(links)
    return (
        gr.update(choices=choices, value=choices[0][1] if choices else None, visible=bool(choices)),
        gr.update(visible=bool(choices)),
    )


def _cached_file(name: str, text: str) -> str:
    """`text` as a file in a folder of Gradio's cache named by its hash, as Gradio names its own copies."""
    content = text.encode("utf-8")
    folder = Path(gr.utils.get_upload_folder()) / hashlib.sha256(content).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path, staging = folder / name, folder / f".{name}.{os.getpid()}.{id(content)}"
    staging.write_bytes(content)
    os.replace(staging, path)  # a concurrent identical export never sees half a file
    return str(path)


class ChatInterface(gr.ChatInterface):
    """Saved conversations live in the visitor's browser and outlive the server's cache (a restart, a Space waking
    from sleep): one whose files are gone still opens, each missing file shown as a one-line placeholder."""

    def _load_conversation(  # type: ignore[override]  # Gradio hands a gr.Request to a handler that asks for one
        self, index: int, conversations: list[list[Any]], request: gr.Request
    ) -> tuple[int, list[Any]]:
        """As Gradio's, but the chat is returned as a value: an update would rebuild the Chatbot and serve its
        avatar again from the app's folder, which `blocked_paths` now refuses."""
        lang = language(request.headers.get("accept-language"))
        return index, [_without_missing_files(message, lang) for message in conversations[index]]


def _without_missing_files(message: dict[str, Any], lang: str = "en") -> dict[str, Any]:
    """`message` with each file that no longer exists replaced by a text placeholder naming it."""
    content = message.get("content")
    parts = content if isinstance(content, list) else [content]
    kept = []
    for part in parts:
        file = part.get("file") if isinstance(part, dict) and part.get("type") == "file" else part
        if isinstance(file, dict) and isinstance(file.get("path"), str) and not os.path.exists(file["path"]):
            name = file.get("orig_name") or Path(file["path"]).name
            part = {"type": "text", "text": t("attachment_gone", lang, name=name)}
        kept.append(part)
    return {**message, "content": kept if isinstance(content, list) else kept[0]}


def private_paths() -> list[str]:
    """What Gradio must never copy into its cache or serve: all in the app's folder but `assets/` (code, `.env`,
    `.git`, tests), DATA_DIR and the working directory, each unless it holds the assets or Gradio's uploads."""
    public = [gr.utils.get_upload_folder(), str(ASSETS)]
    folders = [*Path(__file__).resolve().parent.iterdir(), SETTINGS.data_dir.resolve(), Path.cwd().resolve()]
    return sorted({str(folder) for folder in folders if not any(inside(path, str(folder)) for path in public)})


CACHE_SECONDS = int(SETTINGS.cache_clear_minutes * 60)
with gr.Blocks(title="MiniMax Chat", fill_height=True, delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
    with gr.Sidebar(label=I18N("ui_settings"), position="right", open=False, elem_id="settings"):
        gr.Markdown(I18N("ui_settings_heading"))
        model_box = gr.Dropdown(
            model_choices(SETTINGS.model),
            value=SETTINGS.model,
            label=I18N("ui_model"),
            allow_custom_value=True,
            elem_id="model",
            info=I18N("ui_model_info_fallback" if SETTINGS.fallback_model else "ui_model_info"),
        )
        system_box = gr.Textbox(
            "You are a helpful assistant.", label=I18N("ui_system_prompt"), lines=3, info=I18N("ui_system_prompt_info")
        )
        temperature_box = gr.Slider(*TEMPERATURE_RANGE, value=1.0, step=0.05, label=I18N("ui_temperature"))
        top_p_box = gr.Slider(*TOP_P_RANGE, value=0.95, step=0.01, label=I18N("ui_top_p"))
        max_tokens_box = gr.Number(
            2048,
            label=I18N("ui_max_tokens"),
            minimum=1,
            maximum=1_000_000,
            precision=0,
            info=I18N("ui_max_tokens_info"),
        )
        with gr.Accordion(I18N("ui_advanced"), open=False):
            presence_box = gr.Slider(*PENALTY_RANGE, value=0.0, step=0.1, label=I18N("ui_presence_penalty"))
            frequency_box = gr.Slider(*PENALTY_RANGE, value=0.0, step=0.1, label=I18N("ui_frequency_penalty"))
            seed_box = gr.Number(0, label=I18N("ui_seed"), minimum=0, precision=0)
        key_box = gr.Textbox(
            "",
            label=I18N("ui_key"),
            type="password",
            placeholder=I18N("ui_key_placeholder"),
            info=I18N("ui_key_info"),
        )
        gr.Markdown(I18N("ui_export_heading"))
        export_button = gr.Button(I18N("ui_export"), size="sm")
        with gr.Row():
            markdown_download = gr.DownloadButton("Markdown", visible=False, size="sm", elem_id="export-md")
            json_download = gr.DownloadButton("JSON", visible=False, size="sm", elem_id="export-json")
        if SETTINGS.share_links:
            gr.Markdown(I18N("ui_share_heading"))
            share_prompt_box = gr.Checkbox(False, label=I18N("ui_share_prompt"))
            share_button = gr.Button(I18N("ui_share"), size="sm")
            share_link_box = gr.Textbox(
                label=I18N("ui_share_link"), buttons=["copy"], interactive=False, visible=False, elem_id="share-link"
            )
            share_note = gr.Markdown(visible=False, elem_id="share-note")
            my_links_box = gr.Dropdown([], label=I18N("ui_share_links"), visible=False, elem_id="my-links")
            unshare_button = gr.Button(I18N("ui_unshare"), size="sm", variant="stop", visible=False)
            # The delete tokens stay in this browser; the "secret" is in the page config anyway, fixed so the
            # tokens survive a restart and work with every replica.
            my_links = gr.BrowserState({}, storage_key="minimax-chat-shared-links", secret="shared-links")

    with gr.Row(elem_id="header", equal_height=True):
        gr.Markdown(I18N("ui_title"), elem_id="app-title")
        more_button = gr.Button(I18N("ui_more"), size="sm", variant="secondary", scale=0, elem_id="more-toggle")
    gr.Markdown(I18N("ui_description"), elem_id="app-description")
    chat = ChatInterface(
        respond,
        multimodal=True,
        chatbot=gr.Chatbot(
            label=I18N("ui_chatbot"),
            latex_delimiters=LATEX,
            buttons=["copy", "copy_all"],
            avatar_images=(None, str(ASSETS / "avatar-assistant.png")),
            placeholder=I18N("ui_chatbot_placeholder"),  # type: ignore[arg-type]  # I18n data works here; the hint says str
            scale=1,
        ),
        textbox=gr.MultimodalTextbox(
            file_types=ATTACHMENT_TYPES,
            file_count="multiple",
            placeholder=I18N("ui_input_placeholder"),  # type: ignore[arg-type]  # I18n data works here; the hint says str
            submit_btn=True,
            stop_btn=True,
            autofocus=True,
            elem_id="chat-input",
        ),
        additional_inputs=[
            model_box,
            system_box,
            temperature_box,
            top_p_box,
            max_tokens_box,
            presence_box,
            frequency_box,
            seed_box,
            key_box,
        ],
        additional_outputs=[model_box],  # see model_after
        examples=[[example] + [None] * 9 for example in EXAMPLES],
        editable=True,
        save_history=True,
        concurrency_limit=SETTINGS.concurrency,
        api_name="chat",
        api_visibility="private" if SETTINGS.hide_api else "public",
        fill_height=True,
    )
    chat.new_chat_button.elem_id = "new-chat"  # so that the phone layout can fold the saved-chats column
    ui_only: dict[str, Any] = {"queue": False, "api_visibility": "undocumented"}
    more_button.click(None, js="() => window.toggleMore && window.toggleMore()", **ui_only)
    model_box.change(temperature_for, [model_box, temperature_box], temperature_box, **ui_only)
    export_button.click(export, chat.chatbot, [markdown_download, json_download], **ui_only)
    demo.load(visitor_models, model_box, model_box, **ui_only)
    if SETTINGS.share_links:
        share_button.click(
            share,
            [chat.chatbot, model_box, system_box, share_prompt_box, my_links, key_box],
            [share_link_box, share_note, my_links, my_links_box, unshare_button],
            **ui_only,
        ).then(None, share_link_box, share_link_box, js="(path) => path && new URL(path, document.baseURI).href")
        unshare_button.click(
            unshare,
            [my_links_box, my_links],
            [my_links, my_links_box, unshare_button, share_note, share_link_box],
            **ui_only,
        )
        demo.load(own_links, my_links, [my_links_box, unshare_button], **ui_only)

THEME = gr.themes.Soft(primary_hue="pink").set(  # darker pinks: light text on them needs 4.5:1 contrast
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    block_label_text_color="*primary_800",
    block_label_text_color_dark="*primary_100",
    link_text_color="*primary_700",
    link_text_color_dark="*primary_300",
    block_title_text_color="*primary_800",
    block_title_text_color_dark="*primary_100",
    block_title_background_fill_dark="*primary_800",
    block_label_background_fill_dark="*primary_800",
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
)
demo.queue(max_size=SETTINGS.queue_size, default_concurrency_limit=SETTINGS.concurrency)
demo._queue.sleep_when_free = QUEUE_IDLE_POLL  # Gradio's 1 ms costs an idle process ~30-60 ms of CPU a second


def middleware() -> list[Middleware]:
    """The edge, outermost first (see web/): page headers, bytes a minute per address, the request guard, the
    failed-login throttle, and the expiry of idle sessions' state."""
    uploads = gr.utils.get_upload_folder()
    return [
        Middleware(PagePolicy),
        Middleware(
            VolumeQuota,
            body_per_minute=SETTINGS.body_per_minute,
            upload_per_minute=SETTINGS.upload_per_minute,
            upload_folder=uploads,
            upload_store=SETTINGS.upload_store_bytes,
            trusted_hops=SETTINGS.trusted_proxy_hops,
            storage_url=SETTINGS.redis_url,
        ),
        Middleware(
            RequestGuard,
            body_limit=SETTINGS.max_request_bytes,
            upload_folder=uploads,
            upload_limit=upload_limit(),
            served_folders=[str(Path(gr.utils.get_icon_path("plus.svg")).parent)],  # Gradio's own icons
        ),
        Middleware(
            LoginThrottle,
            max_failures=SETTINGS.login_max_failures,
            window=SETTINGS.login_window,
            trusted_hops=SETTINGS.trusted_proxy_hops,
            storage_url=SETTINGS.redis_url,
        ),
        Middleware(SessionExpiry, max_idle=SETTINGS.session_idle),
    ]


def upload_limit() -> int:
    """Bytes one upload request may carry: the browser sends all files picked at once in one request, so
    a whole message's attachments (MAX_MESSAGE_ATTACHMENTS_MB), plus room for the form's own fields."""
    per_message = SETTINGS.max_message_attachment_bytes or SETTINGS.max_attachment_bytes * 10
    return max(SETTINGS.max_attachment_bytes, per_message) + 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description="MiniMax Chat")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--offline", action="store_true", help="canned replies, no key or network (OFFLINE=1)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
    CLIENT.catalogue.refresh_in_background()
    if SETTINGS.offline:
        log.info("offline: every reply is canned; no key is used and no model is called")
    signal.signal(signal.SIGTERM, _drain)
    # Gradio builds uvicorn's Config without `forwarded_allow_ips`, so uvicorn would take the client address from
    # X-Forwarded-For for every connection from 127.0.0.1: trust no one there, scope_address is the one reader.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    demo.launch(
        server_name="0.0.0.0" if SETTINGS.on_spaces else os.environ.get("GRADIO_SERVER_NAME"),
        share=args.share or SETTINGS.share,
        auth=SETTINGS.login,
        max_threads=SETTINGS.concurrency + 32,
        max_file_size=SETTINGS.max_attachment_bytes,
        favicon_path=str(ASSETS / "favicon.png"),
        theme=THEME,
        head=f"<style>{STYLE}</style>",  # as written: Gradio would scope `css` under its container
        js=SCRIPT,
        i18n=I18N,
        footer_links=["gradio", "settings"] if SETTINGS.hide_api else None,
        run_history=False,  # it would keep every input, visitors' own keys included, in their browser
        blocked_paths=private_paths(),
        enable_monitoring=SETTINGS.monitoring,  # Gradio's default (None) opens /monitoring to anyone
        state_session_capacity=SETTINGS.state_sessions,
        app_kwargs={
            "routes": [*health.routes(REPLIES, SETTINGS.metrics_token), *SHARE_ROUTES],
            "middleware": middleware(),
        },
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
