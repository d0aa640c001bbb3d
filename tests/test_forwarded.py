"""Who the visitor is, behind a local forwarder (issue 20, item 6): with TRUSTED_PROXY_HOPS=0 the app's own
address rule (`chat_backend.quotas.scope_address`) is the only reader of X-Forwarded-For, so a forged header
changes nothing. uvicorn used to rewrite the client address from it for every connection from 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.app_process import AppProcess
from tests.fake_api import FakeAPI
from tests.helpers import app_on, chat_value

PASSWORD = "lovelace-1815"


class Forwarder:
    """A TCP relay on 127.0.0.1 in front of `port`, as an ssh tunnel, socat or a sidecar would be: every
    connection reaches the app from 127.0.0.1, carrying whatever headers the visitor wrote."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                visitor, _ = self.listener.accept()
            except OSError:
                return  # closed
            app = socket.create_connection(("127.0.0.1", self.target))
            for source, sink in ((visitor, app), (app, visitor)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def forwarded_app(shared_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppProcess, str]]:
    """The app with login on and no trusted proxies, and the URL of a local forwarder in front of it."""
    app = app_on(
        shared_api,
        tmp_path_factory.mktemp("forwarded"),
        APP_USERNAME="ada",
        APP_PASSWORD=PASSWORD,
        LOGIN_MAX_FAILURES="5",
        LOGIN_WINDOW_SECONDS="60",
        TRUSTED_PROXY_HOPS="0",
    ).start()
    forwarder = Forwarder(app.port)
    yield app, forwarder.url
    forwarder.close()
    app.stop()


def login(url: str, password: str, forged: str, http: requests.Session | None = None) -> requests.Response:
    fields = {"username": (None, "ada"), "password": (None, password)}
    return (http or requests).post(url + "login", files=fields, headers={"X-Forwarded-For": forged}, timeout=10)


def test_a_forged_forwarded_for_does_not_escape_the_export_rate(forwarded_app: tuple[AppProcess, str]) -> None:
    """Six exports a minute per address (app.py's EXPORTS_PER_MINUTE): a seventh from "another address" is the same
    visitor's seventh."""
    _, url = forwarded_app
    with requests.Session() as visitor:
        assert login(url, PASSWORD, "198.51.100.1", visitor).ok
        config = visitor.get(url + "config", timeout=10).json()
        index = next(e["id"] for e in config["dependencies"] if e.get("api_name") == "export")
        replies = [
            visitor.post(
                url + "gradio_api/run/predict",
                json={"data": [chat_value(200)], "fn_index": index, "session_hash": f"export-{n}"},
                headers={"X-Forwarded-For": f"198.51.100.{n + 10}"},
                timeout=30,
            )
            for n in range(7)
        ]
    assert all(reply.ok and reply.json().get("data") for reply in replies[:6])
    assert "Too many exports" in replies[6].text


def test_a_forged_forwarded_for_does_not_escape_the_login_limit(
    forwarded_app: tuple[AppProcess, str], tmp_path: Path
) -> None:
    """Last in this file: it locks 127.0.0.1 out of the login for a minute."""
    _, url = forwarded_app
    statuses = [login(url, f"guess-{n}", f"10.0.{n}.1").status_code for n in range(7)]
    assert statuses[:5] == [400] * 5 and statuses[5:] == [429, 429]
    assert login(url, PASSWORD, "203.0.113.77").status_code == 429  # the right password from "elsewhere": still us
