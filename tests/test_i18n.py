"""i18n: both catalogues hold the same keys with the same placeholders; notices follow the visitor's language."""

from __future__ import annotations

import inspect

import pytest

from chat_backend import errors, i18n, transcript
from chat_backend.i18n import EN, ZH, language, placeholders, t
from chat_backend.stream import ChatResult


def test_every_key_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert EN.keys() == ZH.keys()
    for key in EN:
        assert placeholders(EN[key]) == placeholders(ZH[key]), key
        assert ZH[key].strip(), key


def test_the_page_texts_have_no_placeholders_and_every_error_class_has_a_title() -> None:
    for key, text in i18n.browser_translations()["zh-CN"].items():
        assert key.startswith(("ui_", "chat_interface.")) and not placeholders(text), key
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.ChatError)]
    assert {f"error_{c.__name__}" for c in classes} <= EN.keys()
    assert all(EN[f"error_{c.__name__}"] == c.title for c in classes)


@pytest.mark.parametrize(("header", "lang"), [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en-US,en;q=0.9,zh-CN;q=0.8", "en"), ("zh-Hans", "zh"),
    ("fr-FR,fr;q=0.9", "en"), ("", "en"), (None, "en"), ("fr, zh;q=0.5", "zh"), ("zh;q=abc, en;q=0.1", "en"),
])
def test_the_language_comes_from_accept_language(header: str | None, lang: str) -> None:
    assert language(header) == lang


def test_notices_facts_and_exports_are_in_the_visitors_language() -> None:
    result = ChatResult(text="", finish_reason="length", dropped_messages=3, model="m", duration=1.5, usage=None,
                        cost_usd=None, credits_used=None, client_request_id="c", inference_id=None,
                        time_to_first_token=None)
    zh = "\n".join(f"{m['metadata']['title']} {m['content']}" for m in transcript.finished(result, "zh"))
    assert "空回复" in zh and "3 条消息" in zh and "回复被截断" in zh and "总用时" in zh and "1.50 秒" in zh
    assert "Empty reply" in transcript.finished(result)[0]["metadata"]["title"]
    notice = transcript.error_notice(errors.Busy("busy", request_id="r1"), "zh")
    assert notice["metadata"]["title"] == "⚠️ 服务器繁忙" and "请求 ID：`r1`" in notice["content"]
    keyed = errors.ChatError("English text", key="dropped", params={"count": 5})
    assert transcript.error_notice(keyed, "zh")["content"].startswith("此对话中最早的 5 条消息")
    assert "# 对话" in transcript.to_markdown([{"role": "user", "content": "hi"}], "zh")
    assert t("request_id", "xx", id="a") == "Request id: `a`" and set(i18n.CATALOGUES) == {"en", "zh"}
