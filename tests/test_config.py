"""config, retry maths and redaction: pure functions, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat_backend.config import Settings, load_settings, resolve_key
from chat_backend.errors import REDACTED, ConfigError, InvalidKey, InvalidSettings, MissingKey, redact
from chat_backend.transport import MAX_RETRY_DELAY, backoff_delay
from chat_backend.visitor_settings import FIELDS, ChatSettings, Chosen, read


def test_defaults_with_an_empty_environment(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path / ".env")
    assert settings.api_key is None
    assert settings.base_url == "https://api.aimlapi.com/v1"
    assert settings.model == "abab6.5s-chat"


def test_dotenv_fills_only_what_the_environment_lacks(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("AIMLAPI_KEY=from-dotenv\nCHAT_MODEL=MiniMax-Text-01\nAIMLAPI_READ_TIMEOUT=5\n")
    settings = load_settings({"CHAT_MODEL": "minimax/m1"}, dotenv)
    assert (settings.api_key, settings.model, settings.read_timeout) == ("from-dotenv", "minimax/m1", 5.0)


def test_key_never_appears_in_the_settings_repr() -> None:
    assert "sekrit" not in repr(Settings(api_key="sekrit-123"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AIMLAPI_READ_TIMEOUT", "soon", "AIMLAPI_READ_TIMEOUT must be a number"),
        ("AIMLAPI_CONNECT_TIMEOUT", "-1", "AIMLAPI_CONNECT_TIMEOUT must be a number of at least"),
        ("AIMLAPI_READ_TIMEOUT", "nan", "AIMLAPI_READ_TIMEOUT"),
        ("AIMLAPI_MAX_RETRIES", "1.5", "AIMLAPI_MAX_RETRIES must be a whole number"),
        ("AIMLAPI_BASE_URL", "api.aimlapi.com/v1", "AIMLAPI_BASE_URL must be an http"),
        ("AIMLAPI_BASE_URL", "ftp://host/v1", "AIMLAPI_BASE_URL must be an http"),
        ("AIMLAPI_BASE_URL", "http://[::1/v1", "AIMLAPI_BASE_URL must be an http"),
        ("AIMLAPI_BASE_URL", "http://127.0.0.1:99999/v1", "AIMLAPI_BASE_URL must be an http"),
        ("CHAT_CONCURRENCY", "1e7", "CHAT_CONCURRENCY must be a whole number between 1 and 10000"),
        ("AIMLAPI_KEY", "sk-abc\u2013def", "AIMLAPI_KEY has “–” \\(en dash\\) at position 7"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({name: value}, tmp_path / ".env")


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    assert load_settings({"AIMLAPI_BASE_URL": "http://127.0.0.1:9/v1/"}, None).base_url == "http://127.0.0.1:9/v1"


def test_key_resolution_order_and_missing_key_message() -> None:
    assert resolve_key(" mine ", Settings(api_key="server")) == "mine"
    assert resolve_key("", Settings(api_key="server")) == "server"
    with pytest.raises(MissingKey) as caught:
        resolve_key(None, Settings())
    assert all(way in caught.value.user_message for way in (".env", "Secret", "Settings"))


@pytest.mark.parametrize("pasted", ["sk-abc123\u200b", "\ufeffsk-abc123", " sk-abc\u200d123\n", "sk-abc123\u2060 "])
def test_invisible_characters_and_spaces_around_a_pasted_key_are_dropped(pasted: str) -> None:
    assert resolve_key(pasted, Settings(api_key="server")) == "sk-abc123"


@pytest.mark.parametrize(
    ("pasted", "named"),
    [
        ("sk-abc\u2014123", "“—” (em dash)"),
        ("sk-abc 123", "a space"),
        ("sk-äbc", "“ä” (latin small letter a with"),
        ("sk-abc\u00a0123", "a space"),
        ("k" * 600, "600 characters"),
    ],
)
def test_a_key_no_api_could_have_is_refused_saying_what_is_wrong(pasted: str, named: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        resolve_key(pasted, Settings(api_key="server"))
    assert named in caught.value.user_message and "paste" in caught.value.user_message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": 2.5}, "Temperature must be between 0 and 2"),
        ({"temperature": -0.1}, "Temperature"),
        ({"top_p": 0.0}, "Top-p must be between 0.01 and 1"),
        ({"frequency_penalty": 2.1}, "Frequency penalty"),
        ({"presence_penalty": -3}, "Presence penalty"),
        ({"max_tokens": 0}, "Max tokens"),
        ({"max_tokens": 1.5}, "Max tokens"),
        ({"seed": -1}, "Seed"),
        ({"model": " "}, "Choose a model"),
    ],
)
def test_chat_settings_out_of_range_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        ChatSettings.of(**changes)


def test_chat_settings_edges_are_accepted() -> None:
    ChatSettings.of(temperature=0, top_p=0.01, frequency_penalty=-2, presence_penalty=2, seed=1, max_tokens=1)


ODD_TEXTS = ["\x00", "abab6.5s-chat\x00", "\ud800", "a\udfff b", "\u200bsk-key", "\U0001f600"]
# Any value JSON can carry, as the page's reply step hands the settings to `read` (Gradio does not preprocess them).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.sampled_from(ODD_TEXTS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
SENT = st.one_of(JSON, st.integers(min_value=-(10**400), max_value=10**400))  # whole numbers past any float


@given(st.dictionaries(st.integers(0, len(FIELDS) - 1), SENT, min_size=1, max_size=3))
@example(changed={0: "abab6.5s-chat\x00"})  # no model's name
@example(changed={1: "a\udfff b"})  # UTF-8 cannot carry it
def test_any_settings_values_are_read_or_refused_saying_why(changed: dict[int, object]) -> None:
    """`read` is the only judge of the page's settings: whatever a script sends in place of some of them, it
    returns checked settings or raises InvalidSettings (a notice the visitor reads), never another error (which
    the visitor would see as an "unexpected" failure)."""
    values = [changed.get(place, spec.default) for place, spec in enumerate(FIELDS)]
    try:
        chosen = read(values, "MiniMax-Text-01")
    except InvalidSettings:
        return
    assert isinstance(chosen, Chosen)
    texts = [chosen.settings.model, chosen.settings.system_prompt, chosen.user_key]
    assert all(isinstance(text.encode("utf-8"), bytes) for text in texts)  # no lone surrogate: sendable
    assert chosen.settings.model.isprintable()
    for name, value in chosen.settings.options.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10])
def test_backoff_doubles_with_jitter_and_a_cap(attempt: int) -> None:
    delays = [backoff_delay(attempt) for _ in range(200)]
    ceiling = min(MAX_RETRY_DELAY, 0.5 * 2 ** (attempt - 1))
    assert all(0.75 * ceiling <= delay <= ceiling for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer sk-abc123XYZ456def",
        'echo {"api_key": "sk-abc123XYZ456def"}',
        "token=sk-abc123XYZ456def&x=1",
        "plain sk-abc123XYZ456def in a sentence",
    ],
)
def test_redact_removes_the_key_and_bearer_tokens(text: str) -> None:
    cleaned = redact(text, "sk-abc123XYZ456def")
    assert "abc123" not in cleaned and REDACTED in cleaned


def test_data_dir_is_spaces_storage_only_when_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}, None).data_dir == Path("data")
    assert load_settings({"DATA_DIR": str(tmp_path)}, None).data_dir == tmp_path
    monkeypatch.setattr("chat_backend.config.SPACES_DATA_DIR", str(tmp_path / "absent"))
    assert load_settings({"SPACE_ID": "a/b"}, None).data_dir == Path("data")
    monkeypatch.setattr("chat_backend.config.SPACES_DATA_DIR", str(tmp_path))
    assert load_settings({"SPACE_ID": "a/b"}, None).data_dir == tmp_path


def test_on_a_space_one_proxy_is_trusted_by_default() -> None:
    """A Space's own proxy appends the visitor's address to X-Forwarded-For; elsewhere nothing is trusted unless set."""
    assert load_settings({"SPACE_ID": "a/b"}, None).trusted_proxy_hops == 1
    assert load_settings({}, None).trusted_proxy_hops == 0
    assert load_settings({"SPACE_ID": "a/b", "TRUSTED_PROXY_HOPS": "2"}, None).trusted_proxy_hops == 2


@pytest.mark.parametrize("url", ["http://:pa55word@host", "redis://:pa55word@host:port/0", "redis://:pa55word@/0"])
def test_a_bad_redis_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL") as caught:
        load_settings({"REDIS_URL": url}, None)
    assert "pa55word" not in caught.value.user_message
    assert "pa55word" not in repr(load_settings({"REDIS_URL": "redis://:pa55word@host"}, None))


def test_an_addresss_part_of_the_upload_folder_is_a_quarter_of_it_unless_set(tmp_path: Path) -> None:
    def share(**env: str) -> int:
        return load_settings(env, tmp_path / ".env").upload_address_bytes

    assert share() == Settings().upload_address_bytes == 500_000_000
    assert share(UPLOAD_STORE_MB="500") == 125_000_000 and share(UPLOAD_STORE_MB="0") == 0
    assert share(UPLOAD_STORE_MB="500", UPLOAD_PER_ADDRESS_MB="80") == 80_000_000
    assert share(UPLOAD_PER_ADDRESS_MB="0") == 0
