"""messages: both Gradio history shapes to API messages, attachments, and the context budget."""

from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat_backend.attachments import FORGED, Attachments
from chat_backend.errors import BadInput
from chat_backend.messages import (
    NOTICE_ID,
    THOUGHT_ID,
    build_messages,
    estimate_tokens,
    fit_to_context,
    is_notice,
    is_thought,
    to_api_messages,
)
from chat_backend.store import SQLiteStore, StoreUnavailable
from tests.helpers import make_pdf

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "chat_request.abab6.5s-chat.json").read_text())


def browser(role: str, *parts: dict, metadata: dict | None = None) -> dict:
    """A history message as the browser sends it: typed parts plus metadata/options keys."""
    return {"role": role, "content": list(parts), "metadata": metadata, "options": None}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def uploads(folder: Path, **limits: int) -> Attachments:
    """Attachments readable from `folder`, as if Gradio had put its uploads there."""
    return Attachments.under([folder], **limits)


def png(path: Path, size: tuple[int, int] = (8, 8), color: str = "red") -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path, "PNG")
    return path


def decoded(part: dict) -> tuple[str, tuple[int, int]]:
    """The format and size of the image in an `image_url` part."""
    from PIL import Image

    header, data = part["image_url"]["url"].split(",", 1)
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert header == f"data:{Image.MIME[image.format]};base64"
        return image.format, image.size


def valid(messages: list[dict]) -> list[dict]:
    import jsonschema

    jsonschema.validate({"model": "abab6.5s-chat", "messages": messages}, SCHEMA)
    return messages


def test_browser_and_api_shapes_give_the_same_messages() -> None:
    from_browser = [browser("user", text("Hi")), browser("assistant", text("Hello!"))]
    from_api = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    expected = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]
    assert valid(to_api_messages(from_browser, "And now?", "Be brief.")) == expected
    assert to_api_messages(from_api, "And now?", "Be brief.") == expected


def test_system_prompt_is_first_on_every_turn_and_history_systems_are_dropped() -> None:
    history = [
        {"role": "system", "content": "old"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]
    messages = to_api_messages(history, "c", "  new prompt ")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == "new prompt"
    assert to_api_messages(history, "c", "   ")[0]["role"] == "user"


def test_notices_are_not_sent_back_and_split_replies_merge() -> None:
    history = [
        browser("user", text("question")),
        browser("assistant", text("partial answer")),
        browser("assistant", text("⚠️ The connection was cut"), metadata={"id": f"{NOTICE_ID}-error", "title": "Error"}),
        browser("assistant", text("more"), metadata={"id": f"{NOTICE_ID}-usage"}),
        {"role": "assistant", "content": "second part"},
    ]
    assert is_notice(history[2]) and not is_notice(history[1])
    messages = valid(to_api_messages(history, "next"))
    assert messages == [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "partial answer\n\nsecond part"},
        {"role": "user", "content": "next"},
    ]


def test_a_user_turn_answered_only_by_an_error_is_not_sent_again() -> None:
    history = [
        {"role": "user", "content": "huge attachment"},
        browser("assistant", text("too big"), metadata={"id": f"{NOTICE_ID}-error-1", "title": "Error"}),
        {"role": "user", "content": "cut off"},
        {"role": "assistant", "content": "partial"},
        browser("assistant", text("cut"), metadata={"id": f"{NOTICE_ID}-error-2", "title": "Error"}),
    ]
    assert [m["content"] for m in to_api_messages(history, "next")] == ["cut off", "partial", "next"]


def thought(value: str, shape: str) -> dict:
    """A reply's thinking as the app shows it, in the browser's shape or the API's."""
    metadata = {"id": f"{THOUGHT_ID}-1", "title": "💭 Thought for 3 s", "status": "done"}
    if shape == "browser":
        return browser("assistant", text(value), metadata=metadata)
    return {"role": "assistant", "content": value, "metadata": metadata}


@pytest.mark.parametrize("shape", ["browser", "api"])
def test_thoughts_are_never_sent_back(shape: str) -> None:
    history = [
        {"role": "user", "content": "2+2?"},
        thought("The user asks a sum. 2+2 is 4.", shape),
        {"role": "assistant", "content": "4"},
        browser("assistant", text("📊 facts"), metadata={"id": f"{NOTICE_ID}-3", "title": "📊", "status": "done"}),
    ]
    assert is_thought(history[1]) and not is_notice(history[1]) and not is_thought(history[2])
    messages = valid(to_api_messages(history, "And 3+3?"))
    assert messages == [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]
    assert "user asks" not in json.dumps(messages)


@pytest.mark.parametrize("shape", ["browser", "api"])
def test_a_turn_that_only_thought_before_failing_is_not_sent_again(shape: str) -> None:
    history = [
        {"role": "user", "content": "hard question"},
        thought("Let me think about", shape),
        browser("assistant", text("cut"), metadata={"id": f"{NOTICE_ID}-error-1", "title": "Error"}),
    ]
    assert [m["content"] for m in to_api_messages(history, "again")] == ["again"]


@pytest.mark.parametrize("opener", ["<think>", "<mm:think>"])
def test_old_replies_with_inline_thinking_send_only_their_answer(opener: str) -> None:
    closer = opener.replace("<", "</", 1)
    history = [
        {"role": "user", "content": "Hi"},
        browser("assistant", text(f"{opener}\nThe user greets me.\n{closer}\n\nHello!")),
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": f"{opener}cut before it closed"},
    ]
    assert [m["content"] for m in to_api_messages(history, "?")] == ["Hi", "Hello!", "Bye\n\n?"]


class CountedHistory(Sequence[Any]):
    """A history that counts how many of its messages were read, however they were read (slices included)."""

    def __init__(self, items: list[dict]) -> None:
        self.items, self.reads = items, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: Any) -> Any:
        got = self.items[index]
        self.reads += len(got) if isinstance(index, slice) else 1
        return got


def test_history_is_read_in_one_pass_not_once_per_message() -> None:
    """A request may carry tens of thousands of messages: looking ahead from each message (`history[i + 1:]`)
    read ~n²/2 of them, 200 million for 20k. Counted, not timed."""
    turn = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "metadata": {"id": f"{THOUGHT_ID}-1", "title": "💭"}},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "n", "metadata": {"id": f"{NOTICE_ID}-1", "title": "📊"}},
    ]
    history = CountedHistory(turn * 500)
    build_messages(history, "next")
    assert history.reads <= 3 * len(history)


def test_multimodal_message_with_image_and_text_file(tmp_path: Path) -> None:
    image = png(tmp_path / "dot.png")
    notes = tmp_path / "notes.md"
    notes.write_text("# Heading\nbody ü", encoding="utf-8")
    message = {"text": "Describe these", "files": [str(image), {"path": str(notes), "orig_name": "my notes.md"}]}
    [user] = valid(to_api_messages([], message, attachments=uploads(tmp_path)))
    sent, attached, question = user["content"]
    assert decoded(sent) == ("PNG", (8, 8))
    assert attached == {"type": "text", "text": '<file name="my notes.md">\n# Heading\nbody ü\n</file>'}
    assert question == text("Describe these")


def test_files_in_browser_history_are_read_again(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    part = {"type": "file", "file": {"path": str(data), "orig_name": "data.csv", "mime_type": "text/csv"}}
    history = [browser("user", part, text("sum it")), browser("assistant", text("3"))]
    messages = valid(to_api_messages(history, "thanks", attachments=uploads(tmp_path)))
    assert messages[0]["content"] == '<file name="data.csv">\na,b\n1,2\n</file>\n\nsum it'


def test_pdf_text_is_extracted_with_page_markers(tmp_path: Path) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf(["First page words", "Second page words"]))
    [user] = to_api_messages([], {"text": "", "files": [str(pdf)]}, attachments=uploads(tmp_path))
    assert "[page 1]\nFirst page words" in user["content"] and "[page 2]\nSecond page words" in user["content"]
    with pytest.raises(BadInput, match="at most 1"):
        to_api_messages([], {"text": "", "files": [str(pdf)]}, attachments=uploads(tmp_path, max_pdf_pages=1))


@pytest.mark.parametrize(
    ("name", "payload", "limit", "error"),
    [
        ("big.txt", b"x" * 2_000, 1_000, "at most 0.001 MB"),
        ("blob.bin", b"\0\1\2binary", 1_000_000, "not a text file"),
        ("latin.txt", "café".encode("latin-1"), 1_000_000, "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4 not really", 1_000_000, "could not be read as a PDF"),
    ],
    ids=["too-big", "binary", "latin-1", "broken-pdf"],
)
def test_unreadable_or_oversized_attachments_say_why(
    tmp_path: Path, name: str, payload: bytes, limit: int, error: str
) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(BadInput, match=error):
        to_api_messages(
            [], {"text": "read this", "files": [str(path)]}, attachments=uploads(tmp_path, max_file_bytes=limit)
        )


def test_missing_attachment_and_empty_message(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no longer available"):
        to_api_messages([], {"text": "x", "files": [str(tmp_path / "gone.txt")]}, attachments=uploads(tmp_path))
    with pytest.raises(BadInput, match="Type a message"):
        to_api_messages([], {"text": "   ", "files": []})


def test_ui_components_and_assistant_images_are_skipped(tmp_path: Path) -> None:
    chart = png(tmp_path / "chart.png")
    history = [
        {"role": "user", "content": "draw"},
        browser(
            "assistant", {"type": "component", "component": "plot", "value": None, "constructor_args": {}, "props": {}}
        ),
        browser("assistant", {"type": "file", "file": {"path": str(chart)}}, text("here")),
    ]
    assert valid(to_api_messages(history, "ok", attachments=uploads(tmp_path)))[1] == {
        "role": "assistant",
        "content": "here",
    }


def conversation(turns: int, words: int) -> list[dict]:
    messages = [{"role": "system", "content": "sys"}]
    for turn in range(turns):
        messages += [
            {"role": "user", "content": f"q{turn} " + "w " * words},
            {"role": "assistant", "content": "a " * words},
        ]
    return messages + [{"role": "user", "content": "newest"}]


def test_fit_keeps_everything_that_fits() -> None:
    messages = conversation(3, 10)
    assert fit_to_context(messages, 10_000, 100).messages == messages


def test_fit_drops_oldest_whole_turns_keeping_system_and_newest() -> None:
    messages = conversation(10, 300)  # each message about 200 tokens by the estimate
    fitted = fit_to_context(messages, 2_000, 500)
    kept = fitted.messages
    assert kept[0] == messages[0] and kept[-1] == messages[-1]
    assert kept[1]["role"] == "user" and fitted.dropped == len(messages) - len(kept)
    assert fitted.dropped % 2 == 0 and fitted.dropped > 0
    assert sum(estimate_tokens(m) for m in kept) <= 1_500
    assert kept[1:] == messages[1 + fitted.dropped :]


def test_fit_refuses_a_newest_message_that_can_never_fit() -> None:
    with pytest.raises(BadInput, match="does not fit"):
        fit_to_context([{"role": "user", "content": "word " * 3_000}], 2_000, 500)


@settings(deadline=None)  # a loaded CI machine; nothing here is slow by design
@given(
    st.one_of(
        st.text(),
        st.binary().map(lambda raw: raw.decode("latin-1")),
        st.integers(),
        st.none(),
        st.dictionaries(st.text(), st.text()),
    )
)
def test_no_value_resolves_outside_the_upload_folder(value: object) -> None:
    folder = os.path.realpath(tempfile.gettempdir() + "/uploads-property")
    for candidate in (value, f"{folder}/{value}", f"{folder}/../{value}"):
        try:
            real = Attachments.under([folder]).resolve(candidate)
        except BadInput as refused:
            assert refused.user_message == FORGED
        else:
            assert real.startswith(folder + os.sep) and os.path.realpath(real) == real


def test_a_broken_image_says_so(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    with pytest.raises(BadInput, match="broken.png could not be read as an image"):
        to_api_messages([], {"text": "see", "files": [str(tmp_path / "broken.png")]}, attachments=uploads(tmp_path))


def test_older_images_beyond_the_request_limit_become_placeholders(tmp_path: Path) -> None:
    history = []
    for index in range(3):
        image = png(tmp_path / f"old{index}.png", color=("red", "green", "blue")[index])
        history += [
            browser("user", {"type": "file", "file": {"path": str(image), "orig_name": image.name}}),
            browser("assistant", text(f"seen {index}")),
        ]
    newest = png(tmp_path / "new.png", color="white")
    built = build_messages(
        history, {"text": "compare", "files": [str(newest)]}, attachments=uploads(tmp_path, max_images_per_request=2)
    )
    sent = json.dumps(built.messages)
    assert sent.count("image_url") == 2 * 2  # type tag and key, for old2 and new
    assert "[image old0.png left out" in sent and "[image old1.png left out" in sent
    assert [note.render() for note in built.notes] == [
        (
            "Only the newest images fit in one request, so the model did not see the oldest: old0.png, old1.png. "
            "Start a new chat to talk about many images."
        )
    ]
    with pytest.raises(BadInput, match="MB of image data, after resizing"):
        build_messages(
            [], {"text": "x", "files": [str(newest)]}, attachments=uploads(tmp_path, max_request_image_bytes=10)
        )


def test_a_text_only_model_gets_placeholders_for_earlier_images(tmp_path: Path) -> None:
    image = png(tmp_path / "plot.png")
    history = [
        browser("user", {"type": "file", "file": {"path": str(image), "orig_name": "plot.png"}}, text("see")),
        browser("assistant", text("a plot")),
    ]
    built = build_messages(history, "thanks", attachments=uploads(tmp_path), vision=False)
    assert built.messages[0]["content"] == "[image plot.png not shown: this model does not read images]\n\nsee"
    assert "does not accept images, so plot.png is not sent" in built.notes[0].render()


def test_an_earlier_attachment_that_is_gone_becomes_a_placeholder(tmp_path: Path) -> None:
    part = {"type": "file", "file": {"path": str(tmp_path / "tide.pdf"), "orig_name": "tide.pdf"}}
    history = [browser("user", part, text("summarise")), browser("assistant", text("done"))]
    built = build_messages(history, "more", attachments=uploads(tmp_path))
    assert built.messages[0]["content"] == "[attachment tide.pdf is no longer available]\n\nsummarise"
    assert [note.render() for note in built.notes] == [
        (
            "tide.pdf from earlier in this conversation is no longer on the server, so the model did not see it. "
            "Attach it again to bring it back."
        )
    ]


class BrokenStore:
    """A store whose backend is down: every call fails as the real ones do."""

    def get(self, *args: object, **kwargs: object) -> bytes | None:
        raise StoreUnavailable("down")

    put = trim = get


@pytest.mark.parametrize("broken", [False, True], ids=["store", "store-down"])
def test_document_text_is_kept_for_later_turns_unless_the_store_is_down(tmp_path: Path, broken: bool) -> None:
    store = BrokenStore() if broken else SQLiteStore(tmp_path / "store.sqlite3")
    folder = tmp_path / "uploads"
    folder.mkdir()
    notes = folder / "notes.md"
    notes.write_text("the tide turns at six")
    attachments = uploads(folder, store=store)  # type: ignore[arg-type]
    to_api_messages([], {"text": "read", "files": [str(notes)]}, attachments=attachments)
    notes.unlink()
    history = [
        browser("user", {"type": "file", "file": {"path": str(notes), "orig_name": "notes.md"}}),
        browser("assistant", text("ok")),
    ]
    history.insert(0, browser("user", {"type": "file", "file": {"path": "bad\0path", "orig_name": "x.txt"}}))
    built = build_messages(history, "when?", attachments=uploads(folder, store=store))  # a fresh process
    kept = '<file name="notes.md">\nthe tide turns at six\n</file>'
    gone = "[attachment notes.md is no longer available]"
    assert built.messages[0]["content"] == "[attachment x.txt is no longer available]\n\n" + (gone if broken else kept)
    assert ("notes.md" in built.notes[0].render()) == broken


def test_an_image_in_a_format_the_api_refuses_is_converted(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (2000, 1000), "orange").save(tmp_path / "scan.bmp")
    [user] = valid(
        to_api_messages(
            [], {"text": "what colour?", "files": [str(tmp_path / "scan.bmp")]}, attachments=uploads(tmp_path)
        )
    )
    assert decoded(user["content"][0]) in {("JPEG", (1568, 784)), ("PNG", (1568, 784))}


def test_a_history_naming_one_upload_many_times_stays_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat_backend.messages.MAX_REQUEST_TEXT_CHARS", 10_000)
    image, doc = png(tmp_path / "same.png"), tmp_path / "same.txt"
    doc.write_text("x" * 1_000)
    parts = [{"type": "file", "file": {"path": str(path)}} for path in (image, doc)]
    history = [browser("user", *parts, text(f"turn {n}")) for n in range(500)]
    built = build_messages(history, "and now?", attachments=uploads(tmp_path))
    sent = json.dumps(built.messages)
    assert sent.count('"image_url": {"url": "data:') == 10 and sent.count("x" * 1_000) == 10
    assert len(sent) < 200_000 and len(built.notes) == 2


@pytest.mark.parametrize("limit", [1, 2, 4, 6])
def test_the_history_limit_counts_earlier_messages_only(limit: int) -> None:
    """MAX_HISTORY_MESSAGES=2 sends the last exchange before the newest message (it used to send none)."""
    turns = [{"role": role, "content": f"{role} {i}"} for i in range(5) for role in ("user", "assistant")]
    messages = [{"role": "system", "content": "sys"}, *turns, {"role": "user", "content": "newest"}]
    fitted = fit_to_context(messages, 1_000_000, 100, max_messages=limit)
    earlier = fitted.messages[1:-1]
    assert fitted.messages[0]["content"] == "sys" and fitted.messages[-1]["content"] == "newest"
    assert len(earlier) == limit - limit % 2  # whole turns, so the kept part still starts with the user
    assert fitted.dropped == len(turns) - len(earlier) and fitted.by_limit


def test_messages_left_out_for_the_window_are_not_blamed_on_the_limit() -> None:
    messages = [
        {"role": "user", "content": "word " * 3_000},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "newest"},
    ]
    fitted = fit_to_context(messages, 2_000, 500, max_messages=200)
    assert fitted.dropped == 2 and not fitted.by_limit
