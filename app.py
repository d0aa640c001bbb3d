"""app: the Gradio chat UI around chat_backend. Wiring only: no HTTP, no JSON, no parsing.

`python app.py` serves http://127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces); `gradio app.py` reloads on
edits. `build(settings)` makes the app (its Blocks and the options for `launch`), so tests and other hosts
build as many as they need; importing this module builds nothing. Nothing here needs the network or a key to
render the page.
"""

from __future__ import annotations

import web.gradio_import  # noqa: F401  first: it takes two costs out of Gradio as Gradio loads (see there)

# isort: split
import argparse
import contextlib
import gc
import hashlib
import importlib.util
import inspect
import itertools
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
from anyio import to_thread
from limits import RateLimitItemPerMinute
from starlette.middleware import Middleware

from chat_backend import ChatClient, ChatError, Settings, load_settings, offline_api, transcript
from chat_backend.attachments import Attachments
from chat_backend.budget import DailyBudget, host_pays
from chat_backend.catalogue import ModelInfo
from chat_backend.config import check_key
from chat_backend.errors import ConfigError
from chat_backend.fallback import FallbackStream, Switch, with_notice
from chat_backend.i18n import EN, browser_translations, language, t
from chat_backend.messages import build_messages, text_length
from chat_backend.metrics import Replies
from chat_backend.pacing import Pacer, UpdateBudget, weight_for
from chat_backend.quotas import Guard, Windows, scope_address
from chat_backend.reasoning import Shown
from chat_backend.relay import Due, newest_in_thread
from chat_backend.shared_links import Shares, link_choices, remember
from chat_backend.store import open_store
from chat_backend.visitor_settings import FIELDS, Field, read
from chat_ui import ChatInterface
from web import health, icons, share_page
from web.guard import RequestGuard, inside
from web.login import LoginThrottle
from web.page_policy import PagePolicy
from web.sessions import SessionExpiry, SessionsPerAddress
from web.stops import EarlyStops
from web.volume import VolumeQuota

log = logging.getLogger("app")
APP_FOLDER = Path(__file__).resolve().parent
ASSETS = APP_FOLDER / "assets"
FAVICON = ASSETS / "favicon.png"
LATEX: list[dict[str, str | bool]] = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
]
QUEUE_IDLE_POLL = 0.005  # seconds between looks at an empty queue; tests/test_health.py checks Gradio reads it
# Seconds between the queue's position messages to waiting visitors. Gradio's "auto" sends one to every waiting
# event each time any event starts: a burst of n chats costs n² messages, and their writes delayed each start.
QUEUE_STATUS_SECONDS = 1.0
ATTACHMENT_TYPES = [".txt", ".md", ".csv", ".json", ".pdf", ".py", ".js", ".ts", ".html", ".xml", ".yaml", "image"]
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
EXPORTS_PER_MINUTE = 6  # per client address; identical exports share one copy on disk
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


class ChatApp:
    """One app's services, made from its settings, and the handlers its page calls.

    What used to be module-level singletons lives here, so that two apps with different settings can run in one
    process (tests build many). Handlers never raise into Gradio for a visitor's mistake: a failure becomes a
    notice in the chat, since raising would leave the textbox disabled.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = ChatClient(settings)
        self.updates = UpdateBudget(settings.update_budget)
        self.guard = Guard.from_settings(settings)
        self.store = open_store(settings)
        self.budget = DailyBudget(settings.daily_budget_usd, self.store)
        self.attachments = Attachments.under(  # only what Gradio received as uploads (or our examples) is read
            [gr.utils.get_upload_folder(), ASSETS / "examples"],
            max_file_bytes=settings.max_attachment_bytes,
            max_pdf_pages=settings.max_pdf_pages,
            max_per_message=settings.max_attachments_per_message,
            max_message_bytes=settings.max_message_attachment_bytes,
            max_request_image_bytes=settings.max_request_image_bytes,
            max_images_per_request=settings.max_images_per_request,
            store=self.store,
            text_ttl=settings.attachment_text_ttl,
        )
        self.shares = Shares(self.store, settings, to_page=share_page.prerender)
        self.exports, self.export_rate = Windows(settings.redis_url), RateLimitItemPerMinute(EXPORTS_PER_MINUTE)
        self.replies = Replies()

    def model_choices(self, current: str, lang: str = "en") -> list[tuple[str, str]]:
        """Dropdown entries, MiniMax first; a name the catalogue does not list is marked as such."""
        choices = [(_label(model, lang), model.id) for model in self.client.catalogue.models()]
        if current not in {value for _, value in choices}:
            choices.insert(0, (_label(self.client.catalogue.info(current), lang), current))
        return choices

    def page_opened(self, request: gr.Request, current: str, links: dict[str, Any] | None = None) -> Any:
        """What the page shows once loaded, in one call: the model list with its notes in the visitor's language
        and, when sharing is on, this browser's shared links (`own_links`)."""
        models = gr.update(choices=self.model_choices(current, language(request.headers.get("accept-language"))))
        return (models, *own_links(links)) if self.settings.share_links else models

    async def respond(
        self, message: str | dict[str, Any], history: list[dict[str, Any]], values: Sequence[Any], request: gr.Request
    ) -> AsyncIterator[tuple[str | list[dict[str, Any]], Any]]:
        """Stream one reply, and the Model setting (changed only if the fallback model answered); every failure
        becomes a notice in the chat. `values` are the visitor settings, in `FIELDS` order.

        Async, so that Stop cancels it at its `await` even while the model is silent: leaving `with stream` then
        closes the upstream request at once. The stream itself is read in a thread of its own (see `_paced`).
        """
        stream: FallbackStream | None = None
        notes: list[dict[str, Any]] = []
        lang = language(request.headers.get("accept-language"))
        address = self.address(request)
        reply = self.replies.start()
        try:
            reply.admit()  # refused while this replica drains before a restart
            await self.guard.screen(address)  # an address whose messages keep being refused: at once, before any work
            chosen = read(values, self.settings.model)  # cheap checks of every field before anything else
            settings = chosen.settings
            built = await to_thread.run_sync(
                lambda: build_messages(  # attachments are read off the event loop
                    history,
                    message,
                    settings.system_prompt,
                    attachments=self.attachments,
                    vision=self.client.catalogue.info(settings.model).vision,
                    max_message_chars=self.settings.max_message_chars,
                )
            )
            notes = [transcript.notice(t("note_title", lang), note.render(lang)) for note in built.notes]
            messages = built.messages
            if notes:
                yield notes, gr.skip()  # before anything is sent, so nothing is billed unannounced
            host_pays_this = host_pays(chosen.user_key, self.settings)
            if host_pays_this:
                await self.budget.check()
            # checked before the limits: a message refused here (no key, settings the model refuses) sends nothing
            checked = FallbackStream(self.client, messages, settings, chosen.user_key, self.settings.fallback_model)
            async with self.guard.admit(request.session_hash or "", address):
                stream = checked
                prompt_chars = text_length(messages)
                budget = self.budget if host_pays_this else None
                pacer = Pacer(self.updates.interval)
                with stream:
                    async for shown in newest_in_thread(
                        lambda: self._paced(stream, pacer, prompt_chars, budget),
                        name="reply",
                        release=lambda: stream.shown() if pacer.flush() is not None else None,
                    ):
                        yield transcript.streaming(shown, lang), gr.skip()
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
            await self.guard.refused(address, error)
            reply.failed(error)
            switch = stream.switch if stream else None
            failure = transcript.failed(stream.shown() if stream else Shown(), error, lang)
            yield notes + with_notice(failure, switch, lang), model_after(switch)
        finally:
            reply.close()

    def _paced(
        self, stream: FallbackStream, pacer: Pacer, prompt_chars: int, budget: DailyBudget | None
    ) -> Iterator[Shown | Due]:
        """The thought and answer so far, paced by the server-wide update budget (which counts both); runs in the
        reply's own thread. When text is first held back, `Due` tells `respond` when to ask the same `pacer` for
        it, should the stream go quiet.

        The reply's cost is recorded here, when the stream has really ended (finished, failed or stopped), since
        after a Stop the event loop has moved on before the reader thread has its result.
        """
        try:
            with self.updates.share(weight_for(prompt_chars)):
                for delta in stream:  # no final flush: the last message in `respond` has the whole text
                    update = pacer.add(delta)
                    stream.defer_reads(pacer.next_update_at())  # what comes sooner is read then, in one read
                    if update is not None:
                        yield stream.shown()
                    elif pacer.hold_began and (at := pacer.held_until()) is not None:
                        yield Due(at)
        finally:
            stream.close()  # a no-op if it ended; otherwise its own `finally` sets `result`
            if budget and stream.result:
                budget.record(stream.result, prompt_chars)

    def address(self, request: gr.Request) -> str:
        """The visitor's address, read past `TRUSTED_PROXY_HOPS` proxies (rules in `chat_backend.quotas`)."""
        assert request.request is not None, "Gradio hands every handler the HTTP request it came with"
        return scope_address(request.request.scope, self.settings.trusted_proxy_hops)

    def temperature_for(self, model: str, temperature: float) -> dict[str, Any]:
        """Narrow the temperature slider to what the chosen model accepts."""
        highest = self.client.catalogue.info(model).temperature_max
        return gr.update(maximum=highest, value=min(temperature, highest))

    def export(self, history: list[dict[str, Any]], request: gr.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        """Write the conversation as Markdown and JSON for the two download buttons, inside Gradio's cache only,
        so CACHE_CLEAR_MINUTES removes them; at most EXPORTS_PER_MINUTE per address, and the body limit caps size."""
        address, lang = self.address(request), language(request.headers.get("accept-language"))
        wait = self.exports.wait_needed(self.export_rate, "export", address)
        if wait:
            raise gr.Error(t("exports_too_often", lang, seconds=math.ceil(wait)), print_exception=False)
        self.exports.hit(self.export_rate, "export", address)
        markdown = _cached_file("conversation.md", transcript.to_markdown(history, lang))
        data = _cached_file("conversation.json", transcript.to_json(history))
        return gr.update(value=markdown, visible=True), gr.update(value=data, visible=True)

    def share(
        self,
        history: list[dict[str, Any]],
        model: str,
        system_prompt: str,
        include_prompt: bool,
        links: dict[str, Any] | None,
        user_key: str,
        request: gr.Request,
    ) -> tuple[Any, ...]:
        """Store a snapshot and show its link (made absolute in the browser); a refusal shows where the link
        would."""
        lang = language(request.headers.get("accept-language"))
        try:
            shared = self.shares.create(
                history,
                model=model or self.settings.model,
                system_prompt=system_prompt if include_prompt else "",
                address=self.address(request),
                hidden=(self.settings.api_key, user_key, check_key(user_key or "")[1]),  # as typed, and as sent
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

    def unshare(self, share_id: str, links: dict[str, Any] | None, request: gr.Request) -> tuple[Any, ...]:
        links, note = self.shares.delete_own(links, share_id, language(request.headers.get("accept-language")))
        return links, *own_links(links), gr.update(value=note, visible=True), gr.update(value="", visible=False)


def _label(model: ModelInfo, lang: str) -> str:
    if model.deprecated:
        return t("model_label_retired", lang, model=model.id)
    if not model.listed:
        return t("model_label_unlisted", lang, model=model.id)
    return model.id


def after_stop(history: list[dict[str, Any]], request: gr.Request) -> list[dict[str, Any]]:
    """Stop ends a reply where it was: a thought still growing is marked cut off rather than thinking forever."""
    return transcript.stopped(history, language(request.headers.get("accept-language")))


def model_after(switch: Switch | None) -> Any:
    """The Model setting follows a switch to the fallback model, so the next message skips the refused one."""
    return gr.update(value=switch.answered_by) if switch else gr.skip()


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


def respond_fn(app: ChatApp) -> Callable[..., AsyncIterator[Any]]:
    """`app.respond` as Gradio calls it: the message, the history, one argument per visitor setting (named and
    ordered as `FIELDS`, which is what the public API documents), and the request."""

    async def respond(*args: Any) -> AsyncIterator[Any]:
        message, history, *values, request = args
        async for update in app.respond(message, history, values, request):
            yield update

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [
        inspect.Parameter("message", positional, annotation=str | dict[str, Any]),
        inspect.Parameter("history", positional, annotation=list[dict[str, Any]]),
        *(inspect.Parameter(spec.name, positional, annotation=type(spec.default)) for spec in FIELDS),
        inspect.Parameter("request", positional, annotation=gr.Request),
    ]
    respond.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    respond.__annotations__ = {"request": gr.Request}  # Gradio finds the request by its annotation
    return respond


def setting_component(spec: Field, app: ChatApp, i18n: gr.I18n) -> gr.Dropdown | gr.Textbox | gr.Slider | gr.Number:
    """The sidebar component for one row of the settings table."""
    label, info_key = i18n(spec.label_key), f"{spec.label_key}_info"
    info = i18n(info_key) if info_key in EN else None
    settings = app.settings
    if spec.kind == "model":
        hint = i18n("ui_model_info_fallback" if settings.fallback_model else "ui_model_info")
        return gr.Dropdown(
            app.model_choices(settings.model),
            value=settings.model,
            label=label,
            allow_custom_value=True,
            elem_id="model",
            info=hint,
        )
    if spec.kind == "text":
        return gr.Textbox(spec.default, label=label, lines=3, info=info, max_length=spec.max_chars)
    if spec.kind == "key":
        return gr.Textbox(
            spec.default,
            label=label,
            type="password",
            placeholder=i18n(f"{spec.label_key}_placeholder"),
            info=info,
            max_length=spec.max_chars,
        )
    if spec.kind == "slider":
        low, high = spec.low or 0.0, spec.high or 1.0  # a slider row always has both
        return gr.Slider(low, high, value=spec.default, step=spec.step, label=label, info=info)
    return gr.Number(spec.default, label=label, minimum=spec.low, maximum=spec.high, precision=0, info=info)


def build(settings: Settings) -> tuple[gr.Blocks, dict[str, Any]]:
    """The app for `settings`: its Blocks (queue configured) and the keyword arguments for `demo.launch`."""
    return blocks(ChatApp(settings))


def trust_no_forwarding_proxy() -> None:
    """Gradio builds uvicorn's Config without `forwarded_allow_ips`, so uvicorn would take the client address from
    X-Forwarded-For for every connection from 127.0.0.1 (an ssh tunnel, a sidecar): switch that off for this
    process, so that `scope_address` (TRUSTED_PROXY_HOPS) is the one reader of the header."""
    os.environ["FORWARDED_ALLOW_IPS"] = ""


def fail_fast_without_matplotlib() -> None:
    """Gradio imports matplotlib before and after every event it runs (to switch its backend). Without matplotlib
    installed, each of those failed imports searches every folder of `sys.path` again: 6% of the app's CPU in a
    burst of 64 chats. Marking it missing makes them fail at once; an installed matplotlib is left alone."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]  # Python's mark for "import fails"


def blocks(app: ChatApp) -> tuple[gr.Blocks, dict[str, Any]]:
    """The page for `app`, and the keyword arguments for its `launch`."""
    settings = app.settings
    trust_no_forwarding_proxy()  # before any launch: the server this app runs on must not rewrite addresses
    fail_fast_without_matplotlib()
    i18n = gr.I18n(**browser_translations())
    cache_seconds = int(settings.cache_clear_minutes * 60)
    with gr.Blocks(title="MiniMax Chat", fill_height=True, delete_cache=(cache_seconds, cache_seconds)) as demo:
        with gr.Sidebar(label=i18n("ui_settings"), position="right", open=False, elem_id="settings"):
            gr.Markdown(i18n("ui_settings_heading"))
            inputs: dict[str, Any] = {}
            for advanced, run in itertools.groupby(FIELDS, key=lambda spec: spec.advanced):  # in table order
                with gr.Accordion(i18n("ui_advanced"), open=False) if advanced else contextlib.nullcontext():
                    inputs |= {spec.name: setting_component(spec, app, i18n) for spec in run}
            gr.Markdown(i18n("ui_export_heading"))
            export_button = gr.Button(i18n("ui_export"), size="sm")
            with gr.Row():
                markdown_download = gr.DownloadButton("Markdown", visible=False, size="sm", elem_id="export-md")
                json_download = gr.DownloadButton("JSON", visible=False, size="sm", elem_id="export-json")
            if settings.share_links:
                gr.Markdown(i18n("ui_share_heading"))
                share_prompt_box = gr.Checkbox(False, label=i18n("ui_share_prompt"))
                share_button = gr.Button(i18n("ui_share"), size="sm")
                share_link_box = gr.Textbox(
                    label=i18n("ui_share_link"),
                    buttons=["copy"],
                    interactive=False,
                    visible=False,
                    elem_id="share-link",
                )
                share_note = gr.Markdown(visible=False, elem_id="share-note")
                my_links_box = gr.Dropdown([], label=i18n("ui_share_links"), visible=False, elem_id="my-links")
                unshare_button = gr.Button(i18n("ui_unshare"), size="sm", variant="stop", visible=False)
                # The delete tokens stay in this browser; the "secret" is in the page config anyway, fixed so the
                # tokens survive a restart and work with every replica.
                my_links = gr.BrowserState({}, storage_key="minimax-chat-shared-links", secret="shared-links")

        with gr.Row(elem_id="header", equal_height=True):
            gr.Markdown(i18n("ui_title"), elem_id="app-title")
            more_button = gr.Button(i18n("ui_more"), size="sm", variant="secondary", scale=0, elem_id="more-toggle")
        gr.Markdown(i18n("ui_description"), elem_id="app-description")
        model_box = inputs["model"]
        chat = ChatInterface(
            respond_fn(app),
            multimodal=True,
            chatbot=gr.Chatbot(
                label=i18n("ui_chatbot"),
                latex_delimiters=LATEX,
                buttons=["copy", "copy_all"],
                avatar_images=(None, str(ASSETS / "avatar-assistant.png")),
                placeholder=i18n("ui_chatbot_placeholder"),  # type: ignore[arg-type]  # I18n data works; hint says str
                scale=1,
            ),
            textbox=gr.MultimodalTextbox(
                file_types=ATTACHMENT_TYPES,
                file_count="multiple",
                placeholder=i18n("ui_input_placeholder"),  # type: ignore[arg-type]  # I18n data works; hint says str
                submit_btn=True,
                stop_btn=True,
                autofocus=True,
                elem_id="chat-input",
            ),
            additional_inputs=[inputs[spec.name] for spec in FIELDS],
            additional_outputs=[model_box],  # see model_after; the page gets it through a state (chat_ui)
            after_stop=after_stop,
            examples=[[example] + [None] * len(FIELDS) for example in EXAMPLES],
            editable=True,
            save_history=True,
            concurrency_limit=settings.concurrency,
            api_name="chat",
            api_visibility="private" if settings.hide_api else "public",
            fill_height=True,
        )
        chat.new_chat_button.elem_id = "new-chat"  # so that the phone layout can fold the saved-chats column
        ui_only: dict[str, Any] = {"queue": False, "api_visibility": "undocumented"}
        more_button.click(None, js="() => window.toggleMore && window.toggleMore()", **ui_only)
        model_box.change(app.temperature_for, [model_box, inputs["temperature"]], inputs["temperature"], **ui_only)
        export_button.click(app.export, chat.chatbot, [markdown_download, json_download], **ui_only)
        opened_inputs, opened_outputs = [model_box], [model_box]
        if settings.share_links:
            opened_inputs.append(my_links)
            opened_outputs += [my_links_box, unshare_button]
            share_button.click(
                app.share,
                [chat.chatbot, model_box, inputs["system_prompt"], share_prompt_box, my_links, inputs["user_key"]],
                [share_link_box, share_note, my_links, my_links_box, unshare_button],
                **ui_only,
            ).then(None, share_link_box, share_link_box, js="(path) => path && new URL(path, document.baseURI).href")
            unshare_button.click(
                app.unshare,
                [my_links_box, my_links],
                [my_links, my_links_box, unshare_button, share_note, share_link_box],
                **ui_only,
            )
        demo.load(app.page_opened, opened_inputs, opened_outputs, **ui_only)  # one call for both (docs/bench.md)
    demo.queue(
        max_size=settings.queue_size,
        default_concurrency_limit=settings.concurrency,
        status_update_rate=QUEUE_STATUS_SECONDS,
    )
    demo._queue.sleep_when_free = QUEUE_IDLE_POLL  # Gradio's 1 ms costs an idle process ~30-60 ms of CPU a second
    return demo, launch_options(app, i18n)


def launch_options(app: ChatApp, i18n: gr.I18n) -> dict[str, Any]:
    """Everything `demo.launch` needs besides the Blocks: server, limits, guards and routes beside the UI."""
    settings = app.settings
    return {
        "server_name": "0.0.0.0" if settings.on_spaces else os.environ.get("GRADIO_SERVER_NAME"),
        "share": settings.share,
        "auth": settings.login,
        "max_threads": settings.concurrency + 32,
        "max_file_size": settings.max_attachment_bytes,
        "favicon_path": str(FAVICON),
        "theme": THEME,
        "head": f"<style>{(ASSETS / 'reach.css').read_text(encoding='utf-8')}</style>",  # as written: unscoped
        "js": (ASSETS / "reach.js").read_text(encoding="utf-8"),  # folding on phones, names for unnamed buttons
        "i18n": i18n,
        "footer_links": ["gradio", "settings"] if settings.hide_api else None,
        "run_history": False,  # it would keep every input, visitors' own keys included, in their browser
        "blocked_paths": private_paths(settings),
        "enable_monitoring": settings.monitoring,  # Gradio's default (None) opens /monitoring to anyone
        "state_session_capacity": settings.state_sessions,
        "app_kwargs": {
            "routes": [
                *health.routes(app.replies, settings.metrics_token),
                *icons.routes(FAVICON),
                *(share_page.routes(app.shares) if settings.share_links else []),
            ],
            "middleware": middleware(settings),
        },
    }


def private_paths(settings: Settings, app_folder: Path = APP_FOLDER) -> list[str]:
    """What Gradio must never copy into its cache or serve: all in the app's folder but `assets/` (code, `.env`,
    `.git`, tests), DATA_DIR and the working directory, each unless it holds the assets, Gradio's uploads or Gradio
    itself (a virtual environment made in the app's folder, as `python -m venv .venv` does: Gradio serves the page's
    icons from its package)."""
    public = [gr.utils.get_upload_folder(), str(ASSETS), str(Path(gr.__file__).parent)]
    folders = [*app_folder.iterdir(), settings.data_dir.resolve(), Path.cwd().resolve()]
    return sorted({str(folder) for folder in folders if not any(inside(path, str(folder)) for path in public)})


def middleware(settings: Settings) -> list[Middleware]:
    """The edge, outermost first (see web/): page headers, bytes per address (a minute, and of uploads between two
    clearings of the cache), the request guard, a Stop sent before its event's id was known, the failed-login
    throttle, and the expiry of idle sessions' state."""
    uploads = gr.utils.get_upload_folder()
    return [
        Middleware(PagePolicy),
        Middleware(
            VolumeQuota,
            body_per_minute=settings.body_per_minute,
            upload_per_minute=settings.upload_per_minute,
            upload_folder=uploads,
            upload_store=settings.upload_store_bytes,
            upload_per_address=settings.upload_address_bytes,
            share_seconds=settings.cache_clear_minutes * 60,
            trusted_hops=settings.trusted_proxy_hops,
            storage_url=settings.redis_url,
        ),
        Middleware(
            RequestGuard,
            body_limit=settings.max_request_bytes,
            upload_folder=uploads,
            upload_limit=upload_limit(settings),
            files_per_upload=settings.max_attachments_per_message,  # the page uploads one message's files at once
            served_folders=[str(Path(gr.utils.get_icon_path("plus.svg")).parent)],  # Gradio's own icons
        ),
        Middleware(EarlyStops),
        Middleware(
            LoginThrottle,
            max_failures=settings.login_max_failures,
            window=settings.login_window,
            trusted_hops=settings.trusted_proxy_hops,
            storage_url=settings.redis_url,
        ),
        Middleware(SessionExpiry, max_idle=settings.session_idle),
        Middleware(
            SessionsPerAddress, limit=settings.state_sessions_per_address, trusted_hops=settings.trusted_proxy_hops
        ),
    ]


def upload_limit(settings: Settings) -> int:
    """Bytes one upload request may carry: the browser sends all files picked at once in one request, so
    a whole message's attachments (MAX_MESSAGE_ATTACHMENTS_MB), plus room for the form's own fields."""
    per_message = settings.max_message_attachment_bytes or settings.max_attachment_bytes * 10
    return max(settings.max_attachment_bytes, per_message) + 1_000_000


def settings_from_environment(offline: bool = False) -> Settings:
    """The settings `python app.py` runs with; `offline` (or OFFLINE=1) points the app at the canned API."""
    try:
        settings = load_settings()
    except ConfigError as err:
        raise SystemExit(f"Configuration error: {err.user_message}") from None
    if settings.offline or offline:
        settings = replace(settings, base_url=offline_api.start(), api_key=offline_api.KEY, offline=True)
    return settings


def main(argv: list[str] | None = None) -> None:
    """`python app.py`: build the app from the environment and serve it until stopped (SIGTERM drains first).

    `gradio app.py` runs this file again in a thread of its own after each edit, finds the page by the global
    name `demo`, and swaps it in; `launch` then returns at once.
    """
    global demo
    reloading = threading.current_thread() is not threading.main_thread()
    parser = argparse.ArgumentParser(description="MiniMax Chat")
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--offline", action="store_true", help="canned replies, no key or network (OFFLINE=1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
    settings = settings_from_environment(args.offline)
    app = ChatApp(settings)
    demo, options = blocks(app)
    app.client.catalogue.refresh_in_background()
    if settings.offline:
        log.info("offline: every reply is canned; no key is used and no model is called")
    if not reloading:
        signal.signal(signal.SIGTERM, lambda signum, frame: _drain(app))
        _set_aside_from_garbage_collection()
    demo.launch(**{**options, "share": options["share"] or args.share})
    if not reloading:
        app.client.close()


def _set_aside_from_garbage_collection() -> None:
    """Exempt what exists before serving starts (Gradio and the page: about 230,000 objects) from the collector's
    full passes, which walked all of it while replies streamed and held the loop up to 0.29 s each (docs/bench.md,
    "Set aside from garbage collection"). Garbage made so far is collected first, so none of it is kept."""
    gc.collect()
    gc.freeze()


def _drain(app: ChatApp) -> None:
    """SIGTERM: turn not-ready, let replies in flight finish for up to DRAIN_SECONDS, then stop the server.

    Gradio installs no signal handler; the KeyboardInterrupt raised here ends its `block_thread` loop, which
    closes the server. A second SIGTERM while draining stops at once.
    """
    replies = app.replies
    if replies.draining:
        raise KeyboardInterrupt
    log.info("SIGTERM: draining %d replies for up to %gs", replies.active, app.settings.drain_seconds)
    if not replies.drain(app.settings.drain_seconds):
        log.warning("stopping with %d replies still streaming", replies.active)
    raise KeyboardInterrupt


demo: gr.Blocks | None = None  # set by `main`, for `gradio app.py`
if __name__ == "__main__":
    main(sys.argv[1:])
