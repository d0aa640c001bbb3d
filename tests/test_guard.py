"""The request guard fails closed (issue 20, item 1): a value it cannot judge refuses the request; nothing it could
not check reaches Gradio. Reproduced through the launched app's routes, then proven over arbitrary input against
the guard itself and the live app."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chat_backend.attachments import PATH_MAX
from tests.app_process import AppProcess
from tests.asgi_driver import Recorder, request
from tests.fake_api import FakeAPI
from tests.helpers import DEFAULTS, event_index, served_urls
from web.guard import COMPONENT_KEYS, MAX_JSON_ITEMS, RequestGuard, inside, json_items

SECRET_TEXT = b"another program's temporary file: do not serve"
POISONS: list[Any] = ["\u0000", "\ud800", "/tmp/a\u0000b", "\udfff/etc", 7, None, ["/etc/hostname"], {"a": 1}]
ROUTES = ["run/predict", "queue/join", "call/_load_conversation"]


@pytest.fixture
def secret() -> Path:
    """A real file outside Gradio's uploads, in the temp folder next to them; its text starts with SECRET_TEXT and
    is this test's own, so a copy another test caused is not counted here."""
    path = Path(tempfile.mkdtemp(prefix="chat-secret-")) / "secret.txt"
    path.write_bytes(SECRET_TEXT + uuid.uuid4().hex.encode())
    return path


def copies(app: AppProcess, secret: Path) -> list[Path]:
    """Files in Gradio's folder holding the secret: what Gradio copied (and would serve, and would attach)."""
    folder, text = Path(app.env["GRADIO_TEMP_DIR"]), secret.read_bytes()
    return [path for path in folder.rglob("*") if path.is_file() and path.read_bytes() == text]


def loader_body(app: AppProcess, route: str, conversation: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A call of the saved-conversation loader (which reads any shape of chat), with `extra` entries first."""
    body: dict[str, Any] = {**(extra or {}), "data": [0, [conversation]]}
    if route != "call/_load_conversation":
        body |= {"fn_index": event_index(app, "_load_conversation"), "session_hash": uuid.uuid4().hex[:10]}
    if route == "queue/join":
        body |= {"trigger_id": None, "event_data": None}
    return body


def send(app: AppProcess, route: str, raw: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    """POST `raw` to `route` and, when accepted, wait for the event to finish, so that any copy is made by then."""
    reply = requests.post(
        f"{app.url}gradio_api/{route}",
        data=raw,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=30,
    )
    if reply.status_code != 200:
        return reply
    if route == "queue/join":
        session = json.loads(raw)["session_hash"]
        with requests.get(
            f"{app.url}gradio_api/queue/data", params={"session_hash": session}, stream=True, timeout=30
        ) as events:
            for line in events.iter_lines(decode_unicode=True):
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                    break
    elif route.startswith("call/"):
        requests.get(f"{app.url}gradio_api/{route}/{reply.json()['event_id']}", timeout=30)
    return reply


def assert_refused(app: AppProcess, reply: requests.Response, secret: Path) -> None:
    for url in served_urls(reply):
        fetched = requests.get(url, timeout=10)
        assert not (fetched.ok and fetched.content.startswith(SECRET_TEXT)), f"{secret} was served at {url}"
    assert not copies(app, secret), "Gradio copied the secret into its cache"
    assert reply.status_code == 400, reply.text[:300]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("poison", range(len(POISONS)))
def test_a_path_the_guard_cannot_judge_refuses_the_whole_request(
    live_app: AppProcess, secret: Path, route: str, poison: int
) -> None:
    """A NUL or a lone surrogate made `inside()` raise, which the guard took for "not JSON": the whole body,
    a second path naming any file included, went on unchecked. The unjudgeable entry comes first here."""
    conversation = [{"role": "user", "content": {"path": str(secret)}}]
    body = loader_body(live_app, route, conversation, {"x": {"path": POISONS[poison]}})
    assert_refused(live_app, send(live_app, route, json.dumps(body).encode()), secret)


def component_part(secret: Path) -> dict[str, Any]:
    """A chat part Gradio builds as a component on the server, with the client's arguments: a Button whose icon is
    any file in the temp folder, which Gradio then copied into the folder it serves (review 8, F2)."""
    return {"type": "component", "component": "button", "value": "x", "constructor_args": {"icon": str(secret)}}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("drop", ["", "type", "component", "constructor_args"])
def test_a_component_part_is_refused_whatever_key_gradio_would_know_it_by(
    live_app: AppProcess, secret: Path, route: str, drop: str
) -> None:
    """Without its "type", Gradio still reads a part with the component's fields as one (the type has a default)."""
    part = {key: value for key, value in component_part(secret).items() if key != drop} | {"props": {}}
    body = loader_body(live_app, route, [{"role": "user", "content": [part]}])
    assert_refused(live_app, send(live_app, route, json.dumps(body).encode()), secret)


def test_an_edit_of_a_chat_holding_a_component_part_copies_nothing(live_app: AppProcess, secret: Path) -> None:
    """The reviewer's reproduction: the edit step preprocesses the chat, which built the Button and copied the file."""
    chat = [{"role": "user", "content": [component_part(secret) | {"props": {}}], "metadata": None, "options": None}]
    body = {
        "data": [chat],
        "fn_index": event_index(live_app, "_edit"),
        "session_hash": uuid.uuid4().hex[:10],
        "event_data": {"index": [1, 0], "value": "t", "previous_value": "o"},
    }
    assert_refused(live_app, send(live_app, "run/predict", json.dumps(body).encode()), secret)


def encodings(body: dict[str, Any], text: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """The same request, spelled in ways a parser might read but the guard might not."""
    plain = json.dumps(body)
    return {
        "utf-16": (plain.encode("utf-16"), {}),
        "utf-32": (plain.encode("utf-32"), {}),
        "utf-16 declared": (plain.encode("utf-16-le"), {"content-type": "application/json; charset=utf-16le"}),
        "bom": (plain.encode("utf-8-sig"), {}),
        "gzip": (gzip.compress(plain.encode()), {"content-encoding": "gzip"}),
        "form": (f"data={plain}".encode(), {"content-type": "application/x-www-form-urlencoded"}),
        "multipart": (
            b'--b\r\nContent-Disposition: form-data; name="data"\r\n\r\n' + plain.encode() + b"\r\n--b--\r\n",
            {"content-type": "multipart/form-data; boundary=b"},
        ),
        "text/plain": (plain.encode(), {"content-type": "text/plain"}),
        "+json": (plain.encode(), {"content-type": "application/vnd.a+json"}),
        "duplicate keys": (plain.replace('{"path": ', '{"path": "x", "path": ', 1).encode(), {}),
        "escaped": (plain.replace('"path"', '"\\u0070ath"').replace("/", "\\/").encode(), {}),
        "NaN": (plain.replace('"data": [0', '"data": [NaN', 1).encode(), {}),
        "no type": (plain.encode(), {"content-type": ""}),
        "text": (text.encode(), {}),
    }


ENCODINGS = list(encodings({}, ""))


@pytest.mark.parametrize("name", ENCODINGS)
def test_other_spellings_of_a_forged_body_are_refused(live_app: AppProcess, secret: Path, name: str) -> None:
    """Each spelling is either read by the guard exactly as Gradio would read it, or refused (400)."""
    conversation = [{"role": "user", "content": {"path": str(secret)}}]
    body = loader_body(live_app, "run/predict", conversation)
    raw, headers = encodings(body, "not json at all")[name]
    reply = send(live_app, "run/predict", raw, headers)
    assert_refused(live_app, reply, secret)


def test_duplicate_keys_are_refused_even_when_the_last_path_is_an_upload(live_app: AppProcess) -> None:
    """Parsers disagree on which of two keys wins; the guard reads neither as settled and refuses."""
    uploaded = requests.post(
        f"{live_app.url}gradio_api/upload", files={"files": ("notes.txt", b"tide tables")}, timeout=30
    ).json()[0]
    conversation = [{"role": "user", "content": {"path": "/etc/hostname"}}]
    raw = json.dumps(loader_body(live_app, "run/predict", conversation))
    raw = raw.replace('"path": "/etc/hostname"', f'"path": "/etc/hostname", "path": {json.dumps(uploaded)}')
    assert send(live_app, "run/predict", raw.encode()).status_code == 400


@pytest.mark.parametrize(
    "target",
    [
        "{secret}",
        "{uploads}/{secret_name}",
        "http://127.0.0.1:{port}/models",
        "https://203.0.113.9/",
        "{uploads}/a%00b",
        "{uploads}/%ED%A0%80",
    ],
)
def test_files_are_served_only_from_the_uploads(
    live_app: AppProcess, shared_api: FakeAPI, secret: Path, target: str
) -> None:
    """`/gradio_api/file=` takes its path in the URL; a URL there made Gradio fetch it and pass it on."""
    uploads = live_app.env["GRADIO_TEMP_DIR"]
    relative = "/".join(["%2e%2e"] * (len(Path(uploads).parts) - 1)) + str(secret)  # dots requests leaves as they are
    path = target.format(
        secret=secret, uploads=uploads, secret_name=relative, port=shared_api.base_url.rsplit(":", 1)[1].split("/")[0]
    )
    asked = len(shared_api.requests)
    for route in ("file=", "file/"):
        reply = requests.get(f"{live_app.url}gradio_api/{route}{path}", timeout=10)
        assert reply.status_code == 400 and SECRET_TEXT not in reply.content, (route, reply.status_code)
    assert len(shared_api.requests) == asked  # nothing fetched on the visitor's behalf


def test_an_uploaded_file_and_the_pages_icons_are_still_served(live_app: AppProcess) -> None:
    uploaded = requests.post(
        f"{live_app.url}gradio_api/upload", files={"files": ("notes.txt", b"tide tables")}, timeout=30
    ).json()[0]
    assert requests.get(f"{live_app.url}gradio_api/file={uploaded}", timeout=10).content == b"tide tables"
    config = requests.get(f"{live_app.url}config", timeout=10).text
    icons = {url for url in re.findall(r'"url":\s*"([^"]*/file=[^"]*)"', config) if url.endswith(".svg")}
    assert icons and all(requests.get(url, timeout=10).ok for url in icons)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_body_on_a_bodyless_method_is_refused(live_app: AppProcess, method: str) -> None:
    reply = requests.request(method, f"{live_app.url}config", data=b'{"path": "/etc/hostname"}', timeout=10)
    assert reply.status_code == 400


# --- The guard itself, over arbitrary input ---------------------------------------------------------------------

UPLOADS = Path(tempfile.mkdtemp(prefix="guard-uploads-"))
UPLOADED = UPLOADS / "abc" / "notes.txt"
UPLOADED.parent.mkdir()
UPLOADED.write_text("tide tables")
OUTSIDE = Path(tempfile.mkdtemp(prefix="guard-outside-")) / "secret.txt"
OUTSIDE.write_bytes(SECRET_TEXT)


def through_guard(body: bytes, headers: dict[str, str]) -> tuple[int, Recorder]:
    """One request through a RequestGuard in front of a `Recorder`: the status and what reached it."""
    downstream = Recorder()
    guard = RequestGuard(downstream, body_limit=5_000_000, upload_limit=6_000_000, upload_folder=str(UPLOADS))
    answer = asyncio.run(request(guard, "/gradio_api/run/predict", body, headers))
    return answer.status, downstream


def every_path(value: Any) -> Iterator[Any]:
    """Every value under a "path" key, of any type, at any depth: what Gradio might read as a file."""
    if isinstance(value, dict):
        if "path" in value:
            yield value["path"]
        for item in value.values():
            yield from every_path(item)
    elif isinstance(value, list):
        for item in value:
            yield from every_path(item)


def is_component(value: Any) -> bool:
    """Whether any object in `value` is a part Gradio may build as a component (written apart from the guard's)."""
    if isinstance(value, dict):
        own = value.get("type") == "component" or any(key in value for key in ("component", "constructor_args"))
        return own or any(is_component(item) for item in value.values())
    return isinstance(value, list) and any(is_component(item) for item in value)


def judged_safe(path: Any) -> bool:
    try:
        return isinstance(path, str) and inside(path, str(UPLOADS))
    except (ValueError, UnicodeError):
        return False


PATH_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [str(OUTSIDE), str(UPLOADED), f"{UPLOADS}/../{OUTSIDE.parent.name}/secret.txt", "\u0000", "\ud800"]
    ),
    st.builds(lambda p, s: p + s, st.sampled_from([str(UPLOADS) + "/", str(UPLOADED)]), st.text(max_size=4)),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
    st.just("a/" * (PATH_MAX // 2 + 1)),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=()), max_size=8)
    | st.sampled_from(["\ud800", "a\udfff", "\U0001f600"]),  # lone surrogates, and a pair's character
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["path", "file", "data", "x", "meta", "type", *sorted(COMPONENT_KEYS)]),
            inner | st.sampled_from(["component", "text", "file"]),
            max_size=3,
        )
        | st.builds(lambda p, rest: {"path": p, **rest}, PATH_VALUES, st.dictionaries(st.sampled_from(["x"]), inner))
    ),
    max_leaves=12,
)


def encodable(value: Any) -> bool:
    """Whether every string in `value` can be written as UTF-8: a lone surrogate (only a `\\u` escape spells one)
    cannot, and Gradio's answer echoing it broke off the event stream."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_only_bodies_whose_every_path_is_an_upload_and_without_components_reach_gradio(
    value: Any, ascii_only: bool
) -> None:
    try:
        raw = json.dumps({"data": [value]}, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:  # a lone surrogate cannot be written as UTF-8: the \u escape is the only spelling
        raw = json.dumps({"data": [value]}).encode()
    status, downstream = through_guard(raw, {"content-type": "application/json"})
    if all(judged_safe(path) for path in every_path(value)) and not is_component(value) and encodable(value):
        assert status == 200 and downstream.bodies == [raw]
    else:
        assert status == 400 and not downstream.bodies
    for body in downstream.bodies:  # whatever passed, read as Gradio reads it, names only uploads, builds nothing
        passed = json.loads(body)
        assert all(judged_safe(path) for path in every_path(passed)) and not is_component(passed)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_bytes_that_are_not_plain_json_never_reach_gradio(raw: bytes) -> None:
    """Only an empty body (it names nothing) or one that is JSON reaches Gradio, and then names only uploads."""
    status, downstream = through_guard(raw, {"content-type": "application/json"})
    try:
        json.loads(raw)
    except (ValueError, RecursionError):
        assert (status == 400 and not downstream.bodies) or raw == b""
    for body in filter(None, downstream.bodies):
        passed = json.loads(body)
        assert all(judged_safe(path) for path in every_path(passed)) and not is_component(passed)


LIVE_VALUES = st.one_of(JSON_VALUES, PATH_VALUES.map(lambda path: {"path": path}), st.lists(JSON_VALUES, max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=LIVE_VALUES, route=st.sampled_from([*ROUTES, "call/chat"]), where=st.integers(0, 3))
@example(value={"path": "\u0000"}, route="run/predict", where=2)
@example(value={"path": "\ud800"}, route="call/_load_conversation", where=3)
def test_no_body_with_a_forged_path_gets_a_file_read_served_or_sent(
    live_app: AppProcess, app_api: FakeAPI, secret: Path, value: Any, route: str, where: int
) -> None:
    """The real app: arbitrary values (any "path" at all) beside a real file outside the uploads, through the
    loader and through a chat message with that file attached. Nothing of the file is copied, served or sent."""
    named: dict[str, Any] = {"path": str(secret)}
    if route == "call/chat":
        named["meta"] = {"_type": "gradio.FileData"}  # as the page sends an attachment
        message = {"text": "read this", "files": [value, named][:: 1 if where % 2 else -1]}
        body: dict[str, Any] = {"data": [message, *DEFAULTS.values()]}
    else:
        contents = [value, {"type": "file", "file": named}][:: 1 if where % 2 else -1]
        if where > 1:  # beside the call's data, where Gradio never looks but the guard does
            contents = [{"type": "file", "file": named}]
        conversation = [{"role": "user", "content": contents}]
        body = loader_body(live_app, route, conversation, {"x": value} if where > 1 else None)
    reply = send(live_app, route, json.dumps(body).encode())
    for url in served_urls(reply):
        fetched = requests.get(url, timeout=10)
        assert not (fetched.ok and fetched.content.startswith(SECRET_TEXT))
    assert not copies(live_app, secret)
    assert not any(SECRET_TEXT.decode() in json.dumps(request.body) for request in app_api.chat_requests())


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/gradio_api/queue/data", b"session_hash=a%00b"),
        ("/gradio_api/queue/data", b"session_hash=%ED%A0%80"),
        ("/gradio_api/queue/data", b"session_hash=%ff"),
        ("/gradio_api/heartbeat/a%0Ab", b""),
        ("/gradio_api/proxy=http://127.0.0.1/", b""),
        ("/gradio_api/dev/reload", b""),  # polled every 50 ms per open request: 300 held a third of a core
        ("/gradio_api/deep_link", b"session_hash=abc"),  # writes a session's state to disk
        ("/gradio_api/custom_component/a/client/b/c", b""),  # printed to the log, each request
    ],
)
def test_a_url_the_guard_cannot_read_is_refused(path: str, query: bytes) -> None:
    downstream = Recorder()
    guard = RequestGuard(downstream, body_limit=1000, upload_limit=1000, upload_folder=str(UPLOADS))
    answer = asyncio.run(request(guard, path, method="GET", query=query))
    assert answer.status == 400 and not downstream.bodies
    readable = asyncio.run(request(guard, "/gradio_api/queue/data", method="GET", query=b"session_hash=abc%20d+e"))
    assert readable.status == 200


def structure(value: Any) -> int:
    """Commas, brackets and braces of `json.dumps(value)` outside its strings, counted on the parsed value."""
    if isinstance(value, dict):
        return 1 + max(len(value) - 1, 0) + sum(structure(item) for item in value.values())
    if isinstance(value, list):
        return 1 + max(len(value) - 1, 0) + sum(structure(item) for item in value)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(0, 30), ascii_only=st.booleans())
def test_the_count_of_values_decides_like_a_parse(value: Any, limit: int, ascii_only: bool) -> None:
    """Strings full of commas, brackets, quotes and backslashes never tip the count over the limit, and a text
    over it is always seen to be."""
    try:
        raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:
        raw = json.dumps(value).encode()
    assert (json_items(raw, limit) > limit) == (structure(value) > limit)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[" + b"[]," * 1_600_000 + b"0]", 400),  # 5 MB of empty lists: seconds of the event loop to build
        (b"[" + b"1," * 2_400_000 + b"0]", 400),
        (b"[" + b'"",' * 1_600_000 + b"0]", 400),
        (json.dumps(['a, [b], {c}, \\"d" ' * 150_000]).encode(), 200),  # text full of them: one value
        (b"[" + b"1," * (MAX_JSON_ITEMS - 2) + b"0]", 200),
    ],
    ids=["empty-lists", "numbers", "empty-strings", "one-text-of-separators", "at-the-limit"],  # not megabytes
)
def test_a_body_of_too_many_values_is_refused_before_it_is_parsed(body: bytes, status: int) -> None:
    assert through_guard(body, {"content-type": "application/json"})[0] == status


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("bytes=0-", 200),
        ("bytes=10-20", 200),
        ("bytes=-500", 200),
        ("bytes=" + "9" * 5000 + "-1", 400),  # Gradio's int() gave up at 4,300 digits: a 500 and a traceback
        ("bytes=\u00b2-3", 400),  # a digit to `isnumeric`, not to `int`
        ("bytes=0-1,2-3", 400),  # the page asks for one range at most
        ("items=0-1", 400),
    ],
    ids=["open", "closed", "suffix", "5000-digits", "superscript-digit", "two-ranges", "other-unit"],
)
def test_a_range_is_one_plain_byte_range(value: str, status: int) -> None:
    downstream = Recorder()
    guard = RequestGuard(downstream, body_limit=1000, upload_limit=1000, upload_folder=str(UPLOADS))
    header = {"range": value.encode("utf-8").decode("latin-1")}  # as the server hands the bytes on
    answer = asyncio.run(request(guard, f"/gradio_api/file={UPLOADED}", method="GET", headers=header))
    assert answer.status == status


# --- Files per upload (review 8, F5): each becomes a folder and a file on disk, so an upload carries at most one
# message's attachments, counted as the body streams ---------------------------------------------------------------

FORM_BOUNDARY = "----WebKitFormBoundaryF5"


def upload_form(count: int) -> bytes:
    """`count` one-line files in one multipart form, as the page (and the reviewer's script) sends them."""
    parts = [
        f'--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{n}"\r\n'
        f"Content-Type: text/plain\r\n\r\n{n}\r\n".encode()
        for n in range(count)
    ]
    return b"".join(parts) + f"--{FORM_BOUNDARY}--\r\n".encode()


def upload_through_guard(body: bytes, content_type: str, language: str = "en") -> tuple[int, str, Recorder]:
    """An upload through a RequestGuard that takes 10 files at once: the status, the answer's text, the app's view."""
    downstream = Recorder()
    guard = RequestGuard(
        downstream, body_limit=1000, upload_limit=6_000_000, upload_folder=str(UPLOADS), files_per_upload=10
    )
    headers = {"content-type": content_type, "content-length": str(len(body)), "accept-language": language}
    answer = asyncio.run(request(guard, "/gradio_api/upload", body, headers))
    assert answer.status != 413 or answer.headers["content-type"].startswith("text/plain")  # the page shows it
    return answer.status, answer.body.decode(), downstream


@pytest.mark.parametrize("count", [1, 3, 10])
def test_an_upload_of_one_messages_files_passes_whole(count: int) -> None:
    body = upload_form(count)
    status, _, downstream = upload_through_guard(body, f"multipart/form-data; boundary={FORM_BOUNDARY}")
    assert status == 200 and downstream.bodies == [body]


@pytest.mark.parametrize("count", [11, 1000])
def test_a_file_past_the_limit_refuses_the_upload_before_gradio_reads_it(count: int) -> None:
    body = upload_form(count)
    status, text, downstream = upload_through_guard(body, f"multipart/form-data; boundary={FORM_BOUNDARY}")
    assert status == 413 and "at most 10 at a time" in text
    assert len(downstream.bodies) == 1 and len(downstream.bodies[0]) < body.index(b'filename="10"')  # 11th unread
    _, chinese, _ = upload_through_guard(body, f"multipart/form-data; boundary={FORM_BOUNDARY}", "zh-CN")
    assert "最多 10 个" in chinese


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", f"multipart/form-data; boundary={'b' * 71}"],
)
def test_an_upload_without_a_boundary_gradio_could_read_is_refused_unread(content_type: str) -> None:
    status, _, downstream = upload_through_guard(upload_form(1), content_type)
    assert status == 400 and not downstream.bodies
