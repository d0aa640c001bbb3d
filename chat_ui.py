"""chat_ui: the chat's wiring in the page, so that a message costs one Gradio call instead of nine.

Gradio 6.31's `gr.ChatInterface` sends each message through nine calls (clear and save the textbox, two button
swaps, show the message, the reply, copy the chat into a server-side state, reset the textbox, save the
conversation and redraw the saved list, the last two sending every saved conversation up and back). Here the
steps that only change the page run in the browser (`js=`), the chat travels up with the message (its last
message is the new one, so the chat the model sees is the chat the visitor sees), and the saved conversations,
kept in the browser, are saved there. A message is one queued call; an edit, an example or an option two (their
event data only reaches the server); a reply the fallback model gave one more, to move the Model setting.

`ChatInterface` keeps Gradio's layout, its `/chat` API endpoint and every feature the app uses: Stop, retry,
undo, edit, examples, options, saved conversations (opening, new, clearing), uploads. Saved conversations stay
readable after a restart and on every replica, and one whose files are gone still opens, each missing file
shown as a one-line placeholder. An edit or an option is text and an example is the server's own: Gradio's
handlers copied any file their event data named (say, in /tmp) into the cache and served it.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import EditData, SelectData
from gradio.i18n import I18nData

from chat_backend.i18n import language, t

# Where the browser keeps the saved conversations, encrypted: fixed, so that they stay readable after a restart
# (Gradio draws a new secret at each start) and on every replica. Not a secret: every page config carries it.
SAVED_CONVERSATIONS_KEY, SAVED_CONVERSATIONS_SECRET = "minimax-chat-saved-conversations", "saved-conversations"
Chat = list[Any]  # messages as Gradio's chatbot holds them
_CARRIED = itertools.count()  # makes each carried update a new value, so that a repeat still applies

# The page's own steps. Each `js=` function gets its inputs' values and returns its outputs' (a dict with
# "__type__": "update" sets properties); they run in the browser and send nothing.
_SAVE = """
const save = (chat, index, saved) => {
  saved = [...(saved ?? [])];
  if (index === null || index === undefined || index >= saved.length) { saved.unshift(chat); index = 0; }
  else saved[index] = chat;
  return [index, saved];
};
"""
_BUSY = '{__type__: "update", interactive: false, submit_btn: false, stop_btn: STOP}'
_IDLE = '{__type__: "update", interactive: true, submit_btn: SUBMIT, stop_btn: false}'


class ChatInterface(gr.ChatInterface):
    """`gr.ChatInterface` with its events wired in the page (see the module's docstring).

    `fn` is called as Gradio's is, `fn(message, history, *additional_inputs)`, and yields replies (and values for
    `additional_outputs`), for the page and for the API alike. Supports what this app uses: a streaming `fn`,
    examples run on click and not cached, no flagging, no validator."""

    def __init__(
        self, fn: Callable[..., Any], *, after_stop: Callable[[Chat, gr.Request], Chat] | None = None, **options: Any
    ) -> None:
        """`after_stop(chat, request)` settles what a stopped reply left on the page (and in a saved chat opened
        later): the reply can no longer update it itself."""
        self.after_stop = after_stop
        if options.get("cache_examples") or options.get("validator") or options.get("flagging_mode") == "manual":
            raise ValueError("chat_ui.ChatInterface does not wire cached examples, validators or flagging")
        if not inspect.isasyncgenfunction(fn):
            raise ValueError("chat_ui.ChatInterface needs an async generator `fn`")
        super().__init__(fn, **options)
        self.saved_conversations.storage_key = SAVED_CONVERSATIONS_KEY  # Gradio's names it by a component id
        self.saved_conversations.secret = SAVED_CONVERSATIONS_SECRET
        if self.save_history:
            self.chat_history_dataset.elem_id = "saved-conversations"

    def _setup_events(self) -> None:
        """Every event of the chat, each as few calls as it can be (see the module's docstring)."""
        submit_btn, stop_btn = json.dumps(self.textbox.submit_btn), json.dumps(self.original_stop_btn)
        ui: dict[str, Any] = {"api_visibility": "undocumented", "queue": False}

        def js(body: str) -> str:
            return f"(...values) => {{ const SUBMIT = {submit_btn}, STOP = {stop_btn};\n{_SAVE}\n{body} }}"

        # The conversation being continued: its place in the saved list, held in the page (None: a new one).
        self.conversation_index = gr.JSON(None, visible=False)
        self.carried = [gr.State() for _ in self.additional_outputs]
        for state, output in zip(self.carried, self.additional_outputs, strict=True):
            state.change(_apply_carried, state, output, show_progress="hidden", **ui)
        # The reply takes its inputs as Gradio validated them, without each component's `preprocess`: Gradio runs
        # each of those in a thread hop of its own (11 here, each waiting for the busy event loop: the largest
        # step left in a first token's delay under load, docs/bench.md), and for these inputs it changes nothing
        # the reply relies on. The chat's text and file parts are as `Chatbot.preprocess` returns them (files are
        # still checked and cached by Gradio), and `fn` checks the settings itself (visitor_settings.read).
        reply = {
            "fn": self._reply_in_page(),
            "inputs": [self.chatbot, *self.additional_inputs],
            "outputs": [self.chatbot, *self.carried],
            "preprocess": False,
            "api_visibility": "undocumented",
            "concurrency_limit": self.concurrency_limit,
            "show_progress": self.show_progress,
        }
        busy = {"fn": None, "outputs": [self.textbox], "js": js(f"return {_BUSY};"), **ui}
        done = {
            "fn": None,
            "inputs": [self.chatbot, self.conversation_index, self.saved_conversations],
            "outputs": [self.textbox, self.conversation_index, self.saved_conversations],
            "js": js(
                f"const [chat, index, saved] = values; return [{_IDLE}, ...save(chat, index, saved)];"
                if self.save_history
                else f"return [{_IDLE}, values[1], values[2]];"
            ),
            **ui,
        }
        # A stopped reply's settled chat is saved without `done`'s re-enabling: the textbox waits for the cancel
        # itself to finish (its `done` comes through the cancelled reply's `then`), because until then Gradio's page
        # drops a new message's reply (the reply's step still counts as running, and it runs once at a time).
        saved = {
            **done,
            "outputs": done["outputs"][1:],
            "js": js(
                "const [chat, index, saved] = values; return save(chat, index, saved);"
                if self.save_history
                else "return [values[1], values[2]];"
            ),
        }
        replies = []

        send = self.textbox.submit(
            None,
            [self.textbox, self.chatbot],
            [self.textbox, self.chatbot],
            js=js(
                "const [box, chat] = values;"
                "const files = (box?.files ?? []).map((file) => ({type: 'file', file}));"
                "const text = box?.text ? [{type: 'text', text: box.text}] : [];"
                "const message = {role: 'user', content: [...files, ...text], metadata: null, options: null};"
                f"return [{{...{_BUSY}, value: {{text: '', files: []}}}}, [...(chat ?? []), message]];"
            ),
            **ui,
        )
        replies.append(send.then(**reply))
        retry = self.chatbot.retry(
            None,
            [self.chatbot],
            [self.chatbot, self.textbox],
            js=js(
                "const chat = [...(values[0] ?? [])];"
                "while (chat.length && chat[chat.length - 1].role !== 'user') chat.pop();"
                f"return [chat, {_BUSY}];"
            ),
            **ui,
        )
        replies.append(retry.then(**reply))
        if self.editable:
            edit = self.chatbot.edit(self._edit, [self.chatbot], [self.chatbot], **ui).success(**busy)
            replies.append(edit.success(**reply))
        if self.examples and not self._additional_inputs_in_examples:
            example = self.chatbot.example_select(self._example, None, [self.chatbot], **ui).success(**busy)
            replies.append(example.success(**reply))
        option = self.chatbot.option_select(self._option, [self.chatbot], [self.chatbot], **ui).success(**busy)
        replies.append(option.success(**reply))
        for event in replies:
            event.then(**done)
            # After a Stop, the page sometimes marks the chat "Error": Gradio's page takes the cancelled reply's
            # closing message, when it arrives after the cancel has finished, as a failed update. A call that
            # does nothing but show its progress on the chat clears the mark; it runs on a failure only (each
            # Stop, and that late message).
            event.failure(_nothing, None, None, show_progress="hidden", show_progress_on=[self.chatbot], **ui)
        self.textbox.stop(None, None, None, cancels=replies, **ui)  # the page then runs `done`, as after a reply
        if self.after_stop:  # one call, then saved in the page like a finished reply (`saved`, above)
            self.textbox.stop(self.after_stop, [self.chatbot], [self.chatbot], **ui).then(**saved)

        self.chatbot.undo(
            None,
            [self.chatbot, self.conversation_index, self.saved_conversations],
            [self.chatbot, self.textbox, self.conversation_index, self.saved_conversations],
            js=js(
                "const [shown, index, saved] = values; const chat = [...(shown ?? [])];"
                "while (chat.length && chat[chat.length - 1].role !== 'user') chat.pop();"
                "const parts = [];"
                "while (chat.length && chat[chat.length - 1].role === 'user') parts.unshift(...chat.pop().content);"
                "const text = parts.filter((p) => p.type === 'text').map((p) => p.text).join('');"
                "const files = parts.filter((p) => p.type === 'file').map((p) => p.file);"
                "const box = {__type__: 'update', value: {text, files}};"
                + (
                    "return [chat, box, ...save(chat, index, saved)];"
                    if self.save_history
                    else "return [chat, box, index, saved];"
                )
            ),
            **ui,
        )
        self._setup_api()
        if self.save_history:
            self._setup_saved_conversations(js, ui)

    def _setup_saved_conversations(self, js: Callable[[str], str], ui: dict[str, Any]) -> None:
        untitled = str(I18nData("chat_interface.conversation"))  # the page translates it
        gr.on(
            [self.load, self.saved_conversations.change],
            None,
            [self.saved_conversations],
            [self.chat_history_dataset],
            js=js(
                f"const untitled = {json.dumps(untitled)};"
                "const title = (chat) => {"
                "  let found = '';"
                "  for (const message of chat) {"
                "    if (message.role !== 'user') continue;"
                "    for (const part of message.content ?? []) found += part.type === 'text' ? part.text : '📎 ';"
                "    if ((message.content ?? []).some((part) => part.type === 'text')) break;"
                "  }"
                "  return (found.length > 40 ? found.slice(0, 40) + '...' : found) || untitled;"
                "};"
                "return {__type__: 'update', samples: (values[0] ?? []).map((chat) => [title(chat ?? [])])};"
            ),
            **ui,
        )
        self.new_chat_button.click(
            None, None, [self.conversation_index, self.chatbot], js=js("return [null, []];"), **ui
        )
        self.chatbot.clear(
            None,
            [self.conversation_index, self.saved_conversations],
            [self.conversation_index, self.saved_conversations],
            js=js("const [index, saved] = values;return [null, (saved ?? []).filter((chat, i) => i !== index)];"),
            **ui,
        )
        self.chat_history_dataset.click(
            self._load_conversation,
            [self.chat_history_dataset, self.saved_conversations],
            [self.conversation_index, self.chatbot],
            show_progress="hidden",
            **ui,
        )

    def _setup_api(self) -> None:
        """The public `/chat` endpoint, as Gradio's: the history kept on the server for the API session."""
        api_fn = self._api_wrapper(self.fn, self._stream_fn)  # type: ignore[no-untyped-call]
        self.fake_api_btn.click(
            api_fn,
            [self.textbox, self.chatbot_state, *self.additional_inputs],
            [self.api_response, self.chatbot_state, *self.additional_outputs],
            api_name=self.api_name,
            api_description=self.api_description,
            api_visibility=typing.cast(typing.Literal["public", "private"], self.api_visibility),
            concurrency_limit=self.concurrency_limit,
            postprocess=False,
        )

    def _reply_in_page(self) -> Callable[..., AsyncIterator[tuple[Any, ...]]]:
        """`fn` for the page: it takes the chat as shown, whose last message is the new one, and yields the chat
        with the reply; values for `additional_outputs` go to states (see `_apply_carried`), since an update or
        `gr.skip()` for a component on every streamed step costs Gradio a new component each time."""
        fn, additional = self.fn, bool(self.additional_outputs)

        async def reply_in_page(chat: Chat | None, *args: Any) -> AsyncIterator[tuple[Any, ...]]:
            chat = chat or []  # an empty chat arrives as None (not preprocessed: see `_setup_events`)
            history, message = self._split_last(chat)
            async with aclosing(fn(message, history, *args)) as replies:
                async for response in replies:
                    response, *extra = response if additional else (response,)
                    yield self._append_message_to_history(response, chat, "assistant"), *map(_carry, extra)

        signature = inspect.signature(fn)
        kept = list(signature.parameters.values())[2:]
        chat = inspect.Parameter("chat", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        reply_in_page.__signature__ = signature.replace(parameters=[chat, *kept])  # type: ignore[attr-defined]
        hints = typing.get_type_hints(fn)  # where Gradio looks for `gr.Request` to pass
        reply_in_page.__annotations__ = {p.name: hints[p.name] for p in kept if p.name in hints}
        return reply_in_page

    def _split_last(self, chat: Chat) -> tuple[Chat, Any]:
        """The history and the new message: the chat's last message, which the page put there. A chat that does
        not end with the visitor's message gets an empty one, which `fn` answers as such."""
        if not chat or chat[-1].get("role") != "user":
            return list(chat), {"text": "", "files": []} if self.multimodal else ""
        parts = chat[-1].get("content") or []
        parts = parts if isinstance(parts, list) else [parts]
        text = "".join(p["text"] for p in parts if isinstance(p, dict) and p.get("type") == "text")
        files = [p["file"] for p in parts if isinstance(p, dict) and p.get("type") == "file"]
        return list(chat[:-1]), {"text": text, "files": files} if self.multimodal else text

    def _edit(self, chat: Chat, edit: EditData, request: gr.Request) -> Chat:
        """The chat up to the edited message, which becomes the new one. The page edits text only; anything else
        is refused, since Gradio would copy a file it named (any in the system's temp folder) into its cache and
        serve it."""
        index = edit.index[0] if isinstance(edit.index, (list, tuple)) else edit.index
        return self._append_message_to_history(_text(edit.value, request), chat[:index], "user")

    def _example(self, example: SelectData, request: gr.Request) -> Chat:
        """A new chat holding the example as the visitor's message: this server's own example at the index the
        page names, never the value it sends (whose files Gradio would copy and serve, as for an edit)."""
        index = example.index
        if not isinstance(index, int) or not 0 <= index < len(self.examples_messages):
            raise gr.Error(t("attachment_forged", _lang(request)), print_exception=False)
        chosen = self.examples_messages[index]
        message: Any = {"text": chosen.get("text", ""), "files": list(chosen.get("files", []))}
        return self._append_message_to_history(message, [], "user")

    def _option(self, chat: Chat, option: SelectData, request: gr.Request) -> Chat:
        """The chosen option as the visitor's message: text only, as for an edit."""
        return self._append_message_to_history(_text(option.value, request), chat, "user")

    def _load_conversation(  # type: ignore[override]  # Gradio hands a gr.Request to a handler that asks for one
        self, index: int, conversations: list[list[Any]], request: gr.Request
    ) -> tuple[int, list[Any]]:
        """As Gradio's, but the chat is returned as a value (an update would rebuild the Chatbot and serve its
        avatar again from the app's folder, which `blocked_paths` refuses) with missing files named, and settled
        as after a Stop (a chat saved while a reply streamed must not look as if it still did)."""
        chat = [_without_missing_files(message, _lang(request)) for message in conversations[index]]
        return index, self.after_stop(chat, request) if self.after_stop else chat


def _text(value: Any, request: gr.Request) -> str:
    """An edit's or option's value, which the page sends as text; anything else is refused."""
    if not isinstance(value, str):
        raise gr.Error(t("attachment_forged", _lang(request)), print_exception=False)
    return value


def _lang(request: gr.Request) -> str:
    return language(request.headers.get("accept-language"))


def _nothing() -> None:
    """A server step that changes nothing (see `_setup_events`: it clears a mark Stop can leave on the chat)."""


def _carry(value: Any) -> Any:
    """A value for an additional output, as its state holds it: `gr.skip()` stays one (the state keeps its
    value and nothing runs), anything else becomes a new value, so that its `.change` sets the output."""
    return value if value == gr.skip() else (next(_CARRIED), value)


def _apply_carried(carried: tuple[int, Any] | None) -> Any:
    return carried[1] if carried else gr.skip()


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
