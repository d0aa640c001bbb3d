"""A loopback HTTP forward proxy for tests: what a client configured with HTTP_PROXY talks to.

It reads the first request of a connection (absolute-form, or CONNECT host:port), opens a connection to that
host (loopback only) and from then on relays bytes both ways, so the origin sees the client leave as soon as
the client leaves the proxy. Requests after the first on a kept-alive connection go to the same origin, whose
server must accept the absolute-form target (the stand-in does, as RFC 9112 asks).
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost"}


class ForwardProxy:
    """`with ForwardProxy() as proxy:` then point a client at `proxy.url`; `requests` lists the request lines
    seen (the first of each connection) and `connections` counts them."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.connections = 0
        self._server = _Server(("127.0.0.1", 0), _Relay)
        self._server.proxy = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="proxy", daemon=True
        )

    def __enter__(self) -> ForwardProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)

    def _seen(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)
            self.connections += 1


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: ForwardProxy


class _Relay(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65_536:
            data = client.recv(65_536)
            if not data:
                return
            head += data
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, target, _ = (line.split(" ") + ["", ""])[:3]
        address = target if method == "CONNECT" else urlsplit(target).netloc
        host, _, port = address.rpartition(":")
        if host not in LOOPBACK or not port.isdigit():
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        self.server.proxy._seen(line)
        with socket.create_connection((host, int(port)), timeout=5) as origin:
            origin.settimeout(None)
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                origin.sendall(head)
            _pump(client, origin)


def _pump(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes; then close both, so each sees the other leave at once."""
    peers = {one: other, other: one}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [])
            for sock in readable:
                data = sock.recv(65_536)
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return
    finally:
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
