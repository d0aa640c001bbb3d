"""catalogue: the live model list, its cache, and the fallback when the API can't be asked."""

from __future__ import annotations

import time

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_backend.catalogue import KNOWN_MODELS, Catalogue, parse_models
from tests.fake_api import FakeAPI, Reply


def catalogue_for(api: FakeAPI, ttl: float = 60.0) -> Catalogue:
    return Catalogue(requests.Session(), api.base_url, ttl)


def test_live_list_holds_chat_models_only_minimax_first_with_context(fake_api: FakeAPI) -> None:
    catalogue = catalogue_for(fake_api)
    assert catalogue.refresh()
    models = catalogue.models()
    ids = [m.id for m in models]
    assert "flux/schnell" not in ids and "MiniMax-Text-01" in ids
    assert all(m.is_minimax for m in models[: len([m for m in models if m.is_minimax])])
    assert catalogue.info("abab6.5s-chat").context_length == 245_000
    assert catalogue.info("minimax/text-01").id == "MiniMax-Text-01"  # matched by alias
    [models_request] = [r for r in fake_api.requests if r.path.startswith("/v1/models")]
    assert (
        "type=openai%2Fchat-completions" in models_request.path or "type=openai/chat-completions" in models_request.path
    )
    assert "Authorization" not in models_request.headers


def test_second_refresh_uses_the_etag(fake_api: FakeAPI) -> None:
    catalogue = catalogue_for(fake_api)
    assert catalogue.refresh() and catalogue.refresh()
    second = [r for r in fake_api.requests if r.path.startswith("/v1/models")][1]
    assert second.headers.get("If-None-Match")
    assert len(catalogue.models()) > 5


def test_failure_falls_back_to_the_notes_list(fake_api: FakeAPI) -> None:
    fake_api.models_reply = Reply(status=503)
    catalogue = catalogue_for(fake_api)
    assert not catalogue.refresh()
    ids = [m.id for m in catalogue.models()]
    assert ids == [m.id for m in KNOWN_MODELS if not m.deprecated]
    assert catalogue.info("abab6.5s-chat").deprecated
    assert "retired" in catalogue.unavailable_message("abab6.5s-chat").render()


def test_models_never_waits_for_a_slow_catalogue(fake_api: FakeAPI) -> None:
    fake_api.models_reply = Reply(ttft=1.5)
    catalogue = catalogue_for(fake_api)
    started = time.monotonic()
    fallback = catalogue.models()
    assert time.monotonic() - started < 1.0  # the catalogue answers after 1.5 s
    assert [m.id for m in fallback] == [m.id for m in KNOWN_MODELS if not m.deprecated]
    fake_api.wait_for_requests(1)


def test_unlisted_model_is_marked_and_gets_an_assumed_window(fake_api: FakeAPI) -> None:
    catalogue = catalogue_for(fake_api)
    catalogue.refresh()
    info = catalogue.info("someone/new-model")
    assert not info.listed and info.context_length > 0
    assert not catalogue.is_available("someone/new-model")


def test_malformed_items_are_skipped() -> None:
    payload = {
        "data": [
            None,
            {"id": 5},
            {"id": "x", "type": "openai/chat-completions", "info": "bad"},
            {"id": "y", "type": "openai/chat-completions", "info": {"contextLength": -1}},
            {"id": "z", "type": "openai/chat-completions", "aliases": None, "info": None},
        ]
    }
    assert [(m.id, m.context_length > 0) for m in parse_models(payload)] == [("z", True)]
    assert parse_models("not a dict") == []


def chat_model(model_id: str, **fields: object) -> dict:
    entry: dict = {
        "id": model_id,
        "type": "openai/chat-completions",
        "aliases": [],
        "info": {"name": model_id, "developer": "MiniMax", "contextLength": 100_000},
    }
    for name, value in fields.items():
        (entry if name in ("aliases", "info") else entry["info"])[name] = value
    return entry


MALFORMED = [
    chat_model("bad/int-aliases", aliases=7),
    chat_model("bad/string-aliases", aliases="abc"),
    chat_model("bad/bool-context", contextLength=True),
    chat_model("bad/text-context", contextLength="lots"),
    chat_model("bad/list-name", name=["x"]),
    chat_model("bad/info", info="none"),
]


def test_a_malformed_entry_is_skipped_and_the_rest_kept(fake_api: FakeAPI) -> None:
    good = chat_model("minimax/good", aliases=["good-alias"], contextLength=123_456)
    fake_api.models_reply = Reply(body={"object": "list", "data": [*MALFORMED, good]})
    catalogue = catalogue_for(fake_api)
    assert catalogue.refresh()
    assert [m.id for m in catalogue.models()] == ["minimax/good"]
    assert catalogue.info("good-alias").context_length == 123_456
    assert not catalogue.info("bad/int-aliases").listed and not catalogue.info("a").listed


def test_a_failing_background_refresh_waits_a_ttl_before_asking_again(fake_api: FakeAPI) -> None:
    fake_api.models_reply = Reply(body={"object": "list", "data": MALFORMED})  # nothing usable: a failure
    catalogue = catalogue_for(fake_api, ttl=60)
    for _ in range(5):
        catalogue.models()  # each page load asks only if the cache is stale
        deadline = time.monotonic() + 5
        while catalogue._refreshing and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the one refresh thread's flag
    assert len([r for r in fake_api.requests if r.path.startswith("/v1/models")]) == 1


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
ENTRY = st.fixed_dictionaries(
    {"id": st.text(max_size=10), "type": st.just("openai/chat-completions")},
    optional={
        "aliases": JSON,
        "info": st.fixed_dictionaries({}, optional={"name": JSON, "developer": JSON, "contextLength": JSON}) | JSON,
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)  # the CI machine is shared
@given(st.lists(ENTRY | JSON, max_size=4))
def test_any_models_body_parses_without_raising_to_well_formed_models(data: list) -> None:
    for model in parse_models({"data": data}):
        assert isinstance(model.name, str) and isinstance(model.developer, str)
        assert all(isinstance(alias, str) for alias in model.aliases)
        assert type(model.context_length) is int and model.context_length > 0


def test_the_catalogue_knows_which_models_think_first_and_the_live_list_keeps_it(fake_api: FakeAPI) -> None:
    catalogue = Catalogue(requests.Session(), fake_api.base_url, ttl=60)
    assert catalogue.refresh()
    reasoning = {model.id: model.reasoning for model in catalogue.models()}
    assert {name for name, kind in reasoning.items() if kind == "always"} == {
        "minimax/m2",
        "minimax/m2-1",
        "minimax/m2-1-highspeed",
        "minimax/m2-5-20260218",
        "minimax/m2-5-highspeed-20260218",
        "minimax/m2-7-20260402",
        "minimax/m2-7-highspeed",
    }
    assert reasoning["minimax/minimax-m3"] == reasoning["minimax/m1"] == "adaptive"
    assert not catalogue.info("MiniMax-Text-01").reasons and not catalogue.info("minimax/m2-her").reasons
    assert not catalogue.info("someone/unknown").reasons


def test_a_live_entry_that_declares_reasoning_is_taken_as_thinking_when_it_judges_so() -> None:
    def item(model_id: str, **extra: object) -> dict:
        return {"id": model_id, "type": "openai/chat-completions", "info": {"contextLength": 8000}, **extra}

    declared, plain = parse_models({"data": [item("x/thinker", capabilities=["reasoning"]), item("x/plain")]})
    assert (declared.reasoning, plain.reasoning) == ("adaptive", "")
    [m2] = parse_models({"data": [item("minimax/m2", capabilities=[])]})
    assert m2.reasoning == "always"  # the static fact stands
