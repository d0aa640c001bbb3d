"""loadgen: a lean asyncio load generator for chat servers, in one event loop, with a hand-rolled HTTP/1.1.

It speaks two protocols: the stand-in API's streaming chat completions (the "direct" floor) and Gradio's
queue protocol the way the browser does (the submit event chain: quick events over `/run/predict`, queued
ones over `/queue/join` plus the `/queue/data` event stream). Messages are recognised by substring, never
JSON-decoded, so that the generator spends far less CPU than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

GRADIO_API = "/gradio_api"
_MSG = re.compile(rb'"msg":"(\w+)"')
_NON_EMPTY_CONTENT = re.compile(rb'"content":\s*"[^"]')


@dataclass
class Timing:
    """One chat turn as the client saw it."""

    ttft: float | None = None  # seconds from sending to the first text
    total: float | None = None  # seconds from sending to the complete reply
    ok: bool = False
    error: str = ""
    final: bytes = b""  # the completion message of a Gradio turn, undecoded


class Connection:
    """One keep-alive HTTP/1.1 connection; requests on it run one after another."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**22)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def send(self, method: str, path: str, body: bytes | None = None, extra: str = "") -> int:
        """Send a request and read the response head; returns the status. The body is read by `chunks`.

        A kept-alive connection that the server closed while idle is reopened once, as browsers do.
        """
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: */*\r\n{extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        request = head.encode() + b"\r\n" + (body or b"")
        reused = self.writer is not None
        if not reused:
            await self._open()
        try:
            self.writer.write(request)
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError):
            if not reused:
                raise
            self.close()
            await self._open()
            self.writer.write(request)
            raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        self._headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        return int(lines[0].split()[1])

    async def chunks(self) -> AsyncIterator[bytes]:
        """The response body as it arrives (de-chunked)."""
        if "content-length" in self._headers:
            yield await self.reader.readexactly(int(self._headers["content-length"]))
        elif self._headers.get("transfer-encoding") == "chunked":
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readline()
        else:
            while data := await self.reader.read(65536):
                yield data
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def events(connection: Connection) -> AsyncIterator[bytes]:
    """The `data:` payloads of a server-sent event stream, undecoded."""
    buffer = b""
    async for chunk in connection.chunks():
        buffer += chunk
        *complete, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in complete:
            for line in event.split(b"\n"):
                if line.startswith(b"data:"):
                    yield line[5:].lstrip()


async def direct_turn(host: str, port: int, messages: list[dict[str, Any]], model: str) -> Timing:
    """Stream one reply straight from the chat-completions endpoint: the floor for everything else."""
    timing, started = Timing(), time.perf_counter()
    connection = Connection(host, port)
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": 4096,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    try:
        status = await connection.send(
            "POST", "/v1/chat/completions", json.dumps(body).encode(), extra="Authorization: Bearer bench\r\n"
        )
        if status // 100 != 2:
            raise ValueError(f"HTTP {status}")
        async for data in events(connection):
            if timing.ttft is None and _NON_EMPTY_CONTENT.search(data):
                timing.ttft = time.perf_counter() - started
            if data == b"[DONE]":
                break
        timing.total, timing.ok = time.perf_counter() - started, timing.ttft is not None
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        timing.error = repr(exc)
    finally:
        connection.close()
    return timing


def browser_shape(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the browser sends the chatbot's value: content as a list of typed parts."""
    return [
        {"role": m["role"], "content": [{"type": "text", "text": m["content"]}], "metadata": None, "options": None}
        for m in history
    ]


@dataclass
class Dependency:
    fn_index: int
    queued: bool
    inputs: list[int]
    outputs: list[int] = field(default_factory=list)
    backend: bool = True  # False: a `js=` step the browser runs by itself, no request


def _submit_chain(first: dict[str, Any], deps: list[dict[str, Any]], kinds: dict[int, str]) -> list[dict[str, Any]]:
    """Every event one submit sets off in the browser, in the order it starts them: the events that follow each
    (`.then`, `.success`), and the `.change` listeners of the browser-stored values (saved conversations) each
    writes. As if every event succeeded; each at most once."""
    chain, waiting, seen = [], [first], set()
    while waiting:
        current = waiting.pop(0)
        if current["id"] in seen:
            continue
        seen.add(current["id"])
        chain.append(current)
        stored = {o for o in current["outputs"] if kinds.get(o) == "browserstate"}
        waiting += [
            d
            for d in deps
            if (d.get("trigger_after") == current["id"] and not d.get("trigger_only_on_failure"))
            or any(target == [o, "change"] for target in d["targets"] for o in stored)
        ]
    return chain


@dataclass
class GradioChat:
    """The browser's submit chain of a ChatInterface, learned from the app's `/config`."""

    host: str
    port: int
    chain: list[Dependency]
    defaults: dict[int, Any]
    textbox: int
    chatbot: int
    multimodal: bool
    trigger: int
    marker: bytes = b""  # text that only the complete reply contains
    components: dict[int, str] = field(default_factory=dict)
    on_load: list[Dependency] = field(default_factory=list)  # quick events a page load runs
    stored: dict[tuple[str, int], Any] = field(default_factory=dict)  # each session's browser-stored values
    cookies: dict[str, str] = field(default_factory=dict)  # each session's cookies: a balancer's affinity one

    @classmethod
    async def discover(cls, host: str, port: int, marker: bytes = b"") -> GradioChat:
        connection = Connection(host, port)
        try:
            if (status := await connection.send("GET", "/config")) != 200:
                raise RuntimeError(f"GET /config: HTTP {status}")
            config = json.loads(b"".join([c async for c in connection.chunks()]))
        finally:
            connection.close()
        kinds = {c["id"]: c["type"] for c in config["components"]}
        defaults = {
            c["id"]: (c.get("props") or {}).get("value", (c.get("props") or {}).get("default_value"))
            for c in config["components"]
        }
        deps = config["dependencies"]
        first = next(
            d
            for d in deps
            if any(t[1] == "submit" and kinds.get(t[0]) in ("textbox", "multimodaltextbox") for t in d["targets"])
        )
        textbox = first["inputs"][0]
        chain = [
            Dependency(d["id"], bool(d.get("queue", True)), d["inputs"], d["outputs"], d.get("backend_fn", True))
            for d in _submit_chain(first, deps, kinds)
        ]
        chatbot = next(c for c in config["components"] if c["type"] == "chatbot")["id"]
        on_load = [
            Dependency(d["id"], False, d["inputs"])
            for d in deps
            if any(t[1] == "load" for t in d["targets"]) and not d.get("queue", True) and d.get("backend_fn", True)
        ]
        return cls(
            host,
            port,
            chain,
            defaults,
            textbox,
            chatbot,
            kinds[textbox] == "multimodaltextbox",
            first["targets"][0][0],
            marker=marker,
            components=kinds,
            on_load=on_load,
        )

    def _data(self, dependency: Dependency, text: str, history: list[dict[str, Any]], session: str = "") -> list[Any]:
        values = []
        for component in dependency.inputs:
            kind = self.components.get(component)
            if (session, component) in self.stored:
                values.append(self.stored[(session, component)])
            elif component == self.textbox:
                values.append({"text": text, "files": []} if self.multimodal else text)
            elif component == self.chatbot:
                values.append(browser_shape(history))
            elif kind == "state":
                values.append(None)  # held on the server; the browser sends nothing
            else:
                values.append(self.defaults.get(component))
        return values

    async def turn(self, text: str, history: list[dict[str, Any]], session: str | None = None) -> Timing:
        """One message through the whole chain; TTFT and total are taken on the first queued (streaming) event.

        The chatbot's value follows the chain as the browser's does: the history until a step (the server's or a
        `js=` one) has shown the message in it, then with the message, and after the reply with the reply too.
        The textbox holds the text until a step has cleared it. `js=` steps themselves send nothing."""
        session = session or uuid.uuid4().hex[:11]
        timing, started = Timing(), time.perf_counter()
        posts = Connection(self.host, self.port)
        streaming_seen = False
        shown, typed = history, text
        try:
            for dependency in self.chain:
                if not dependency.backend:
                    if self.chatbot in dependency.outputs and not streaming_seen:
                        shown = [*history, {"role": "user", "content": text}]
                    typed = "" if self.textbox in dependency.outputs else typed
                    continue
                payload = {
                    "data": self._data(dependency, typed, shown, session),
                    "fn_index": dependency.fn_index,
                    "session_hash": session,
                    "event_data": None,
                    "trigger_id": self.trigger,
                }
                if not dependency.queued:
                    status, body = await self._json(posts, session, f"{GRADIO_API}/run/predict", payload)
                    if status != 200:
                        raise RuntimeError(f"fn {dependency.fn_index}: HTTP {status} {body[:200]!r}")
                    self._keep_stored(session, dependency, body)
                    if self.chatbot in dependency.outputs and not streaming_seen:
                        shown = [*history, {"role": "user", "content": text}]
                    typed = "" if self.textbox in dependency.outputs else typed
                    continue
                status, body = await self._json(posts, session, f"{GRADIO_API}/queue/join", payload)
                if status != 200:
                    raise RuntimeError(f"join {dependency.fn_index}: HTTP {status} {body[:200]!r}")
                final = await self._follow(session, None if streaming_seen else timing, started)
                if not streaming_seen:
                    streaming_seen = True
                    timing.total, timing.final = time.perf_counter() - started, final
                    timing.ok = timing.ttft is not None and (not self.marker or self.marker in final)
                    reply = {"role": "assistant", "content": self.marker.decode() if self.marker else ""}
                    shown = [*history, {"role": "user", "content": text}, reply]
        except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError) as exc:
            timing.ok, timing.error = False, repr(exc)[:300]
        finally:
            posts.close()
        return timing

    async def _json(self, connection: Connection, session: str, path: str, payload: Any) -> tuple[int, bytes]:
        """POST `payload` with the session's cookies, keeping any the server sets (as a browser does)."""
        status = await connection.send("POST", path, json.dumps(payload).encode(), extra=self._cookie(session))
        if cookie := connection._headers.get("set-cookie"):
            self.cookies[session] = cookie.split(";")[0]
        return status, b"".join([chunk async for chunk in connection.chunks()])

    def _cookie(self, session: str) -> str:
        return f"Cookie: {self.cookies[session]}\r\n" if session in self.cookies else ""

    def _keep_stored(self, session: str, dependency: Dependency, body: bytes) -> None:
        """Remember what the app asked the browser to store (its saved conversations), to send it back."""
        kept = [i for i, component in enumerate(dependency.outputs) if self.components.get(component) == "browserstate"]
        if kept:
            data = json.loads(body)["data"]
            for index in kept:
                self.stored[(session, dependency.outputs[index])] = data[index]

    async def open_page(self, history: list[dict[str, Any]] | None = None) -> str:
        """A new session as a page load makes it (the app's load events run), optionally already holding
        `history` on the server, as after many turns. Returns the session hash."""
        session = uuid.uuid4().hex[:11]
        connection = Connection(self.host, self.port)
        calls = [(dep, self._data(dep, "", [])) for dep in self.on_load]
        streaming = next(i for i, dep in enumerate(self.chain) if dep.queued)
        sync = next((d for d in self.chain[streaming + 1 :] if d.inputs == [self.chatbot] and d.backend), None)
        if history and sync:  # a chain with no such step sends the history with each message instead
            calls.append((sync, [browser_shape(history)]))
        try:
            for dependency, data in calls:
                payload = {
                    "data": data,
                    "fn_index": dependency.fn_index,
                    "session_hash": session,
                    "event_data": None,
                    "trigger_id": None,
                }
                status, body = await self._json(connection, session, f"{GRADIO_API}/run/predict", payload)
                if status != 200:
                    raise RuntimeError(f"page load fn {dependency.fn_index}: HTTP {status} {body[:200]!r}")
        finally:
            connection.close()
        return session

    async def _follow(self, session: str, timing: Timing | None, started: float) -> bytes:
        """Read the session's event stream until its event completes; returns the completion message."""
        stream = Connection(self.host, self.port)
        try:
            await stream.send("GET", f"{GRADIO_API}/queue/data?session_hash={session}", extra=self._cookie(session))
            async for data in events(stream):
                kind = _MSG.search(data)
                name = kind.group(1) if kind else b""
                if name == b"process_generating" and timing is not None and timing.ttft is None:
                    timing.ttft = time.perf_counter() - started
                elif name == b"process_completed":
                    if b'"success":false' in data:
                        raise RuntimeError(f"event failed: {data[:300]!r}")
                    return data
                elif name == b"close_stream":
                    break
        finally:
            stream.close()
        raise RuntimeError("event stream closed before the event completed")
