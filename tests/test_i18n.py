"""i18n: both catalogues hold the same keys with the same placeholders; notices follow the visitor's language."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import chat_backend
from chat_backend import errors, i18n, transcript
from chat_backend.client import ChatClient
from chat_backend.config import Settings
from chat_backend.i18n import EN, ZH, language, placeholders, t
from chat_backend.messages import ERROR_NOTICE_ID
from chat_backend.stream import ChatResult
from chat_backend.visitor_settings import ChatSettings
from tests.app_process import AppProcess
from tests.fake_api import FakeAPI, Reply
from tests.helpers import app_on, chat, gradio_client, notices


def test_every_key_exists_in_both_languages_with_the_same_placeholders() -> None:
    assert EN.keys() == ZH.keys()
    for key in EN:
        assert placeholders(EN[key]) == placeholders(ZH[key]), key
        assert ZH[key].strip(), key


def test_the_page_texts_have_no_placeholders_and_every_error_class_has_a_title() -> None:
    for key, text in i18n.browser_translations()["zh-CN"].items():
        assert key.startswith(("ui_", "chat_interface.")) and not placeholders(text), key
    for kind in _error_classes():  # each class that names its own title has it in the catalogue
        if "title" in vars(kind):
            assert EN.get(f"error_{kind.__name__}") == kind.title, kind


def _error_classes() -> list[type[errors.ChatError]]:
    """Every ChatError class anywhere in chat_backend (they live beside what raises them, not only in errors.py)."""
    for module in pkgutil.iter_modules(chat_backend.__path__):
        importlib.import_module(f"chat_backend.{module.name}")
    found, pending = [], [errors.ChatError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found


def test_every_error_notice_has_a_title_in_chinese() -> None:
    """`Forged` and `Missing` inherit BadInput's title; a Chinese visitor must not get an English heading."""
    for kind in _error_classes():
        assert transcript.error_title(kind, "zh") != transcript.error_title(kind, "en"), kind


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-Hans", "zh"),
        ("fr-FR,fr;q=0.9", "en"),
        ("", "en"),
        (None, "en"),
        ("fr, zh;q=0.5", "zh"),
        ("zh;q=abc, en;q=0.1", "en"),
    ],
)
def test_the_language_comes_from_accept_language(header: str | None, lang: str) -> None:
    assert language(header) == lang


def test_notices_facts_and_exports_are_in_the_visitors_language() -> None:
    result = ChatResult(
        text="",
        finish_reason="length",
        dropped_messages=3,
        model="m",
        duration=1.5,
        usage=None,
        cost_usd=None,
        credits_used=None,
        client_request_id="c",
        inference_id=None,
        time_to_first_token=None,
    )
    zh = "\n".join(f"{m['metadata']['title']} {m['content']}" for m in transcript.finished(result, "zh"))
    assert "空回复" in zh and "3 条消息" in zh and "回复被截断" in zh and "总用时" in zh and "1.50 秒" in zh
    assert "Empty reply" in transcript.finished(result)[0]["metadata"]["title"]
    notice = transcript.error_notice(errors.Busy("busy", request_id="r1"), "zh")
    assert notice["metadata"]["title"] == "⚠️ 服务器繁忙" and "请求 ID：`r1`" in notice["content"]
    keyed = errors.ChatError("English text", key="dropped", params={"count": 5})
    assert transcript.error_notice(keyed, "zh")["content"].startswith("此对话中最早的 5 条消息")
    assert "# 对话" in transcript.to_markdown([{"role": "user", "content": "hi"}], "zh")
    assert t("request_id", "xx", id="a") == "Request id: `a`" and set(i18n.CATALOGUES) == {"en", "zh"}


@pytest.fixture(scope="module")
def one_a_minute(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app allowing one message a minute per chat, so a second message is refused by the throttle."""
    folder = tmp_path_factory.mktemp("i18n")
    app = app_on(shared_api, folder, RATE_LIMIT_PER_SESSION="1").start()
    yield app
    app.stop()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", ["⚠️ API 密钥被拒绝", "请检查 AIMLAPI_KEY", "⚠️ 请慢一点", "每分钟最多 1 条"]),
        ("en-US,en;q=0.9", ["⚠️ API key rejected", "Check AIMLAPI_KEY", "⚠️ Slow down", "at most 1 a minute"]),
    ],
)
def test_api_and_limit_notices_come_back_in_the_browsers_language(
    one_a_minute: AppProcess, shared_api: FakeAPI, header: str, expected: list[str]
) -> None:
    shared_api.reset()
    shared_api.script(Reply(status=401))
    client = gradio_client(one_a_minute.url, headers={"Accept-Language": header})
    shown = []
    for text in ("Hello", "Again"):
        _, final = chat(client, text)
        [notice] = [n for n in notices(final) if n["metadata"]["id"].startswith(ERROR_NOTICE_ID)]
        shown += [notice["metadata"]["title"], notice["content"]]
    assert expected[0] == shown[0] and expected[1] in shown[1], shown
    assert expected[2] == shown[2] and expected[3] in shown[3], shown
    assert len(shared_api.chat_requests()) == 1  # the throttled message never reached the API


def test_every_visitor_facing_error_in_chat_backend_is_raised_with_a_message_key() -> None:
    """ConfigError alone may carry English text: the host reads it at start-up, not a visitor. Forged and
    Missing pass their own key in their constructors (checked here through `super().__init__(key=...)`)."""
    classes = {kind.__name__ for kind in _error_classes()}
    english = []
    for path in sorted(Path(errors.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in classes - {"ConfigError", "Forged", "Missing"} and (
                node.args or not any(k.arg == "key" for k in node.keywords)
            ):
                english.append(f"{path.name}:{node.lineno} {name}")
    assert not english, english


def test_the_vendors_words_end_their_sentence_before_the_advice_in_both_languages(fake_api: FakeAPI) -> None:
    """A 429 or 500 notice quotes the API and then advises: "It said: “Too Many Requests” Wait a minute" ran the
    quote into the next sentence (in Chinese: “Too Many Requests”请等待…, with no full stop at all)."""
    settings = Settings(api_key="k", base_url=fake_api.base_url, max_retries=0)
    fake_api.script(Reply(status=429), Reply(status=500))
    with ChatClient(settings) as client:
        for _ in range(2):
            with pytest.raises(errors.ChatError) as caught:
                client.complete([{"role": "user", "content": "hi"}], ChatSettings(model="MiniMax-Text-01"))
            english, chinese = caught.value.message("en"), caught.value.message("zh")
            assert "”." in english and "” " not in english.replace("”.", ""), english
            assert "”。" in chinese, chinese
