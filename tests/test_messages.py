"""messages: both Gradio history shapes to API messages, attachments, and the context budget."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from chat_backend.errors import BadInput
from chat_backend.messages import NOTICE_ID, estimate_tokens, fit_to_context, is_notice, to_api_messages

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "chat_request.abab6.5s-chat.json").read_text())


def browser(role: str, *parts: dict, metadata: dict | None = None) -> dict:
    """A history message as the browser sends it: typed parts plus metadata/options keys."""
    return {"role": role, "content": list(parts), "metadata": metadata, "options": None}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


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
    history = [{"role": "system", "content": "old"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
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


def test_multimodal_message_with_image_and_text_file(tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n fake")
    notes = tmp_path / "notes.md"
    notes.write_text("# Heading\nbody ü", encoding="utf-8")
    message = {"text": "Describe these", "files": [str(png), {"path": str(notes), "orig_name": "my notes.md"}]}
    [user] = valid(to_api_messages([], message))
    image, attached, question = user["content"]
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    assert attached == {"type": "text", "text": '<file name="my notes.md">\n# Heading\nbody ü\n</file>'}
    assert question == text("Describe these")


def test_files_in_browser_history_are_read_again(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    part = {"type": "file", "file": {"path": str(data), "orig_name": "data.csv", "mime_type": "text/csv"}}
    history = [browser("user", part, text("sum it")), browser("assistant", text("3"))]
    messages = valid(to_api_messages(history, "thanks"))
    assert messages[0]["content"] == '<file name="data.csv">\na,b\n1,2\n</file>\n\nsum it'


def test_pdf_text_is_extracted_with_page_markers(tmp_path: Path) -> None:
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(make_pdf(["First page words", "Second page words"]))
    [user] = to_api_messages([], {"text": "", "files": [str(pdf)]})
    assert "[page 1]\nFirst page words" in user["content"] and "[page 2]\nSecond page words" in user["content"]
    with pytest.raises(BadInput, match="at most 1"):
        to_api_messages([], {"text": "", "files": [str(pdf)]}, max_pdf_pages=1)


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
def test_unreadable_or_oversized_attachments_say_why(tmp_path: Path, name: str, payload: bytes, limit: int, error: str) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(BadInput, match=error):
        to_api_messages([], {"text": "read this", "files": [str(path)]}, max_attachment_bytes=limit)


def test_missing_attachment_and_empty_message() -> None:
    with pytest.raises(BadInput, match="no longer available"):
        to_api_messages([], {"text": "x", "files": ["/nonexistent/file.txt"]})
    with pytest.raises(BadInput, match="Type a message"):
        to_api_messages([], {"text": "   ", "files": []})


def test_ui_components_and_assistant_images_are_skipped(tmp_path: Path) -> None:
    png = tmp_path / "chart.png"
    png.write_bytes(b"\x89PNG")
    history = [
        {"role": "user", "content": "draw"},
        browser("assistant", {"type": "component", "component": "plot", "value": None, "constructor_args": {}, "props": {}}),
        browser("assistant", {"type": "file", "file": {"path": str(png)}}, text("here")),
    ]
    assert valid(to_api_messages(history, "ok"))[1] == {"role": "assistant", "content": "here"}


def conversation(turns: int, words: int) -> list[dict]:
    messages = [{"role": "system", "content": "sys"}]
    for turn in range(turns):
        messages += [{"role": "user", "content": f"q{turn} " + "w " * words}, {"role": "assistant", "content": "a " * words}]
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


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for page_text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({page_text}) Tj ET"
        page_number = len(objects) + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {page_number + 1} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        kids.append(f"{page_number} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


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
    messages = [{"role": "user", "content": "word " * 3_000}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "newest"}]
    fitted = fit_to_context(messages, 2_000, 500, max_messages=200)
    assert fitted.dropped == 2 and not fitted.by_limit
