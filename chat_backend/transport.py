"""transport: the connections to the API, and one call on them that owns its socket, so a Stop ends it at once.

A call leases a connection and drives urllib3's connection (requests' own transport) itself. urllib3's pool
would pick the connection inside `urlopen`, where nothing can reach its socket before the answer's headers, and
hand it back to the pool by itself inside the read that reaches the body's end, when another visitor's request
may take it. Here a connection is the call's from the lease until the call gives it back (only after reading
its answer whole) or closes it. Retries are a loop of our own whose back-off waits on the call's Stop.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import random
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import requests
import urllib3.exceptions
from requests.utils import DEFAULT_CA_BUNDLE_PATH, select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection, ProxyConfig
from urllib3.response import HTTPResponse
from urllib3.util import Retry, make_headers, parse_url

from .config import Settings

# What a failure of the transport can be, from connecting to the last byte of the body.
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)
# The error answers a retry can help: rate limited (Retry-After says when), an internal error or a gateway that
# lost its upstream (usually a moment's hiccup), temporarily unavailable. Not 504, the API's *generation*
# timeout: the same request would take as long again. 400/401/403/404 would fail the same way again.
RETRY_STATUSES = frozenset({429, 500, 502, 503})
CONNECT_FAILURES = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)  # nothing sent
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
DRAIN_GRACE = 0.1  # seconds after `[DONE]` to wait for the end of the body, so the connection can be reused
READ_SIZE = 65_536
MAX_READ_PAUSE = 0.1  # seconds a read waits for the next update at most: the reply's end is seen that late at worst
# (at 64 chats, 1 s cost 11% on a reply's total time, 0.2 s up to 8%, 0.1 s nothing measurable; docs/bench.md)


def backoff_delay(attempt: int, initial: float = INITIAL_RETRY_DELAY, cap: float = MAX_RETRY_DELAY) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): doubling, capped, times a random 0.75–1."""
    return min(cap, initial * 2.0 ** (attempt - 1)) * (0.75 + random.random() / 4)


def retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header asks for (a number or an HTTP date), or None if it says nothing usable."""
    with contextlib.suppress(urllib3.exceptions.InvalidHeader):
        return Retry().parse_retry_after(value) if value else None
    return None


class Connections:
    """The client's connections to the API's chat endpoint, opened through the proxy the environment names (as
    requests would choose it) and kept while idle for the next call. Thread-safe."""

    def __init__(self, url: str, session: requests.Session, keep: int, on_retry: Callable[[], None]) -> None:
        self.keep = keep
        self.on_retry = on_retry  # told as each retry's back-off begins (metrics)
        self._idle: list[HTTPConnection] = []  # only connections nobody uses
        self._lock = threading.Lock()
        found = session.merge_environment_settings(url, {}, None, None, None)
        target, proxy = parse_url(url), select_proxy(url, found["proxies"])
        self.request_target = target.request_uri  # origin-form, unless a proxy forwards the request
        self.proxy_headers: dict[str, str] = {}  # sent with each forwarded request
        self._address = (target.host or "", target.port, target.scheme == "https")
        self._tunnel: dict[str, Any] = {}  # set_tunnel's arguments, when a proxy tunnels to an https API
        verify = found["verify"] if isinstance(found["verify"], str) else DEFAULT_CA_BUNDLE_PATH
        self._tls: dict[str, Any] = {"ca_cert_dir" if os.path.isdir(verify) else "ca_certs": verify}
        if proxy:
            via = parse_url(proxy)
            auth = make_headers(proxy_basic_auth=unquote(via.auth)) if via.auth else {}
            if target.scheme == "https":  # the proxy sees only encrypted bytes
                self._tunnel = {"host": target.host, "port": target.port or 443, "headers": auth, "scheme": via.scheme}
                self._tls.update(proxy=via, proxy_config=ProxyConfig(None, False, None, None))
                self._address = (via.host or "", via.port, True)
            else:  # the proxy reads the request, so the request names the whole URL
                self.request_target, self.proxy_headers = url, auth
                self._address = (via.host or "", via.port, via.scheme == "https")

    def lease(self, connect_timeout: float) -> HTTPConnection:
        """An idle connection that is still open, or a new one, connected; raises if connecting fails (then
        nothing was sent)."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                break
            if conn.is_connected:  # the server has not closed it while it was idle
                return conn
            conn.close()
        host, port, tls = self._address
        if tls:
            conn = HTTPSConnection(host, port, timeout=connect_timeout, cert_reqs="CERT_REQUIRED", **self._tls)
        else:
            conn = HTTPConnection(host, port, timeout=connect_timeout)
        if self._tunnel:
            conn.set_tunnel(**self._tunnel)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return conn

    def give_back(self, conn: HTTPConnection) -> None:
        """Keep a connection whose last answer was read whole, for the next call (while there is room)."""
        with self._lock:
            if not conn.is_closed and len(self._idle) < self.keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Call:
    """One request to the API and its retries: the reader's thread sends (`open`), reads (`body`, `drain`) and
    ends it (`close`); `stop` may come from any thread at any time.

    The attempt owns its connection from the lease until `_end`. Meanwhile `_handle` is a duplicate of its
    socket's descriptor, ours alone, so shutting it down can never hit a descriptor number urllib3 closed and
    the system reused. `_end` forgets the handle under `_lock` before the connection can be given back, and
    `stop` shuts the handle down only under `_lock`: a Stop shuts the current attempt's socket or nothing.
    """

    def __init__(self, connections: Connections, settings: Settings, body: bytes, headers: dict[str, str]) -> None:
        self.connections = connections
        self.settings = settings
        self.billable = False  # a request went out and no error answer came for it: the API may bill it
        self._body = body
        self._headers = {**headers, **connections.proxy_headers}
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._conn: HTTPConnection | None = None
        self._handle: socket.socket | None = None
        self._response: HTTPResponse | None = None
        self._whole = False  # the answer was read to its end: its connection may serve another call
        self.read_after = 0.0  # no read of the socket before this (time.monotonic()): see `_pace_socket_reads`
        self._has_more: Callable[[], bool] = _nothing_more  # see `_pace_socket_reads`

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the call at once, from any thread: the socket it reads is shut down (the server sees us leave and
        the blocked reader wakes), a back-off ends, and nothing more is sent."""
        with self._lock:
            self._stopped.set()
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.shutdown(socket.SHUT_RDWR)

    def open(self) -> HTTPResponse | None:
        """Send the request, retrying connection failures and the statuses a retry can help while the budget
        allows; the answer whose headers arrived (2xx or the last refusal), or None once stopped."""
        waited, retries = 0.0, 0
        while not self.stopped:
            try:
                response = self._attempt()
            except CONNECT_FAILURES:
                self._end(whole=False)
                wait = backoff_delay(retries + 1)
                if self.stopped or retries >= self.settings.max_retries or waited + wait > self.settings.retry_budget:
                    raise
            else:
                if response is None or response.status not in RETRY_STATUSES or retries >= self.settings.max_retries:
                    return response
                asked = retry_after(response.headers.get("Retry-After"))
                wait = backoff_delay(retries + 1) if asked is None else asked
                if waited + wait > self.settings.retry_budget:
                    return response  # the visitor is told how long to wait instead
                self._end(whole=False)  # the refusal is not read: its connection is closed, not reused
            self.connections.on_retry()
            if self._stopped.wait(wait):  # a Stop ends the back-off at once
                return None
            waited, retries = waited + wait, retries + 1
        return None

    def _attempt(self) -> HTTPResponse | None:
        conn = self.connections.lease(self.settings.connect_timeout)
        with self._lock:
            if self.stopped:
                conn.close()
                return None
            self._conn, self._whole = conn, False
            self._handle = socket.socket(fileno=os.dup(conn.sock.fileno()))
        conn.timeout = self.settings.connect_timeout  # for sending
        conn.request(
            "POST", self.connections.request_target, body=self._body, headers=self._headers, preload_content=False
        )
        self.billable = True  # sent: the API may bill it unless it answers with an error status
        conn.timeout = self.settings.read_timeout  # for every read of the answer
        sock = conn.sock  # http.client lets go of it for an answer that ends by closing: it stays the answer's
        self._response = response = conn.getresponse()
        self._pace_socket_reads(response, sock)
        self.billable = 200 <= response.status < 300
        return response

    def _pace_socket_reads(self, response: HTTPResponse, sock: socket.socket) -> None:
        """Before each read of the socket (not of what `http.client` already holds in its buffer) that would find
        nothing there, wait for `read_after`, at most `MAX_READ_PAUSE`; a Stop ends the wait. The socket keeps what
        arrives meanwhile, and one read then takes it all. A read costs system calls whatever it brings (about
        100 µs a token on the 2-core test machine, docs/bench.md), and a reader that shows text a few times a
        second needs no more reads than that. What is already there is read at once, so a stream is never read
        slower than it comes.

        Also sets `_has_more`, which `body` asks whether `http.client` can hand out more of an uncompressed answer
        without waiting (see `_more_here`). It looks at what the buffer holds, first filled from the socket if the
        buffer is empty and the socket has bytes; its reads of the socket meanwhile say "nothing now" rather than
        wait, as a non-blocking socket does."""
        answer, buffered = response._fp, getattr(response._fp, "fp", None)
        reader = getattr(buffered, "raw", None)  # the socket's reader, under the buffer
        if not (
            isinstance(answer, http.client.HTTPResponse)
            and isinstance(buffered, io.BufferedReader)
            and isinstance(reader, socket.SocketIO)
        ):
            return  # read as it is: pacing and joining only save work
        read_into, poller = reader.readinto, select.poll()
        poller.register(sock, select.POLLIN)
        peeking = False

        def ready() -> bool:
            return bool(_decrypted_bytes(sock) or poller.poll(0))

        def paced(buffer: Any) -> int | None:
            if peeking:
                return None
            pause = min(self.read_after - time.monotonic(), MAX_READ_PAUSE)
            if pause > 0 and not ready():
                self._stopped.wait(pause)
            return read_into(buffer)

        def has_more() -> bool:
            nonlocal peeking
            if buffered.closed:  # `http.client` closes it once the answer has ended
                return False
            peeking = not ready()
            try:
                held = buffered.peek(1)
            finally:
                peeking = False
            return _more_here(answer, held)

        reader.readinto = paced  # type: ignore[method-assign,assignment]  # this response's own reader, not the class
        if _identity(response):  # a decoder may need more than is here to give anything
            self._has_more = has_more

    def body(self) -> Iterator[bytes]:
        """The answer's body as it arrives, decompressed: each time, all that is already here (`http.client` hands
        out one HTTP chunk, a token, per read; the rest of what one read of the socket brought is joined to it,
        so that the reader handles it, and shows it, at once), up to `READ_SIZE` bytes at a time however fast the
        answer comes. A proxy may compress even an event stream. Should a read fail, what came before it is handed
        out first, then the failure."""
        assert self._response is not None, "open() first"
        read1 = _read1(self._response)
        while chunk := read1(READ_SIZE):
            pieces, size = [chunk], len(chunk)
            try:
                while size < READ_SIZE and self._has_more() and (chunk := read1(READ_SIZE - size)):
                    pieces.append(chunk)
                    size += len(chunk)
            except Exception:
                yield b"".join(pieces)
                raise
            yield b"".join(pieces)
            if not chunk:
                break
        self._whole = True

    def drain(self) -> None:
        """The reply is complete (`[DONE]`): read the end of the body if it comes at once (a few reads, each
        within `DRAIN_GRACE`), so the connection can serve another call; else `close` closes it."""
        if self._conn is None or self._conn.sock is None or self._response is None:  # ends by closing anyway
            return
        self._conn.sock.settimeout(DRAIN_GRACE)
        self.read_after = 0.0  # the end is read at once, not when the next update would be due
        read1 = _read1(self._response)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            self._whole = any(not read1(READ_SIZE) for _ in range(3))

    def close(self) -> None:
        """The reader is done: the connection goes back for reuse if its answer was read whole, else it is closed."""
        self._end(whole=self._whole)

    def _end(self, whole: bool) -> None:
        with self._lock:
            conn, handle, response = self._conn, self._handle, self._response
            self._conn = self._handle = self._response = None
            self._has_more = _nothing_more  # it holds the answer's buffer
            reuse = whole and not self.stopped
        if handle is not None:
            handle.close()
        if response is not None and not reuse:
            response.close()
        if conn is not None:
            if reuse:
                self.connections.give_back(conn)
            else:
                conn.close()


def _read1(response: HTTPResponse) -> Callable[[int], bytes]:
    """What reads the body a piece at a time: `http.client`'s own reader for an uncompressed chunked answer (a
    stream), as urllib3's adds about 40 µs a call on the 2-core test machine, and a stream is read a token a call;
    urllib3's otherwise, which decompresses, and raises when an answer ends short of its Content-Length."""
    answer = response._fp
    if isinstance(answer, http.client.HTTPResponse) and answer.chunked and _identity(response):
        return answer.read1
    return response.read1


def _identity(response: HTTPResponse) -> bool:
    """Whether the body comes as it is, not compressed (we ask for that; a proxy may compress anyway)."""
    return response.headers.get("Content-Encoding", "identity").strip().lower() == "identity"


def _more_here(answer: http.client.HTTPResponse, held: bytes) -> bool:
    """Whether `http.client` (`answer`) can hand out more of the body from `held`, the bytes it has buffered,
    without reading the socket: within a body or a chunk's data, any byte; at the end of a chunk's data, its CRLF,
    the next chunk's whole size line and some of its data. The last chunk (size 0) is left to the next read, which
    may wait for its trailers. Whatever is unsure is "no": the caller hands on what it has, and reads later."""
    if not answer.chunked or answer.chunk_left:
        return bool(held)
    if answer.chunk_left == 0:  # a chunk's data was read to its end: its CRLF comes first
        if not held.startswith(b"\r\n"):
            return False
        held = held[2:]
    line, end, data = held.partition(b"\n")
    try:
        return bool(end and data) and int(line.split(b";")[0], 16) > 0
    except ValueError:
        return False


def _nothing_more() -> bool:
    return False


def _decrypted_bytes(sock: socket.socket) -> int:
    """What TLS has already read and decrypted for `sock`, which the socket itself no longer shows as readable."""
    return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
