"""The edge through the balancer with login on (issue 20): two replicas behind HAProxy sharing Redis, as
`python deploy/cluster.py` runs them. The guard refuses what it cannot judge there too, and the login limit is
one limit for the whole cluster."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cluster import Cluster, needs_haproxy_and_redis
from tests.fake_api import FakeAPI

pytestmark = needs_haproxy_and_redis
PASSWORD = "lovelace-1815"
SECRET_TEXT = b"another program's temporary file, beside the cluster"


@pytest.fixture(scope="module")
def login_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with FakeAPI() as api:
        running = Cluster(
            tmp_path_factory.mktemp("login-cluster"),
            api,
            APP_USERNAME="ada",
            APP_PASSWORD=PASSWORD,
            LOGIN_MAX_FAILURES="5",
            LOGIN_WINDOW_SECONDS="60",
        )
        try:
            running.wait_ready(timeout=100)  # a busy machine; under pytest-timeout so the log shows
            yield running
        finally:
            running.stop()


def login(url: str, password: str, replica: str | None = None) -> requests.Response:
    """POST /login as the page's login form does (a multipart form), pinned to `replica` if given."""
    fields = {"username": (None, "ada"), "password": (None, password)}
    cookies = {"SERVERID": replica} if replica else None
    return requests.post(url + "login", files=fields, cookies=cookies, timeout=10)


def test_a_path_the_guard_cannot_judge_is_refused_through_the_balancer(login_cluster: Cluster) -> None:
    """Issue 20, item 1, as a logged-in visitor would send it through HAProxy: an unjudgeable "path" first, then a
    real file outside the uploads."""
    login_cluster.wait_ready()
    secret = Path(tempfile.mkdtemp(prefix="chat-secret-")) / "secret.txt"
    secret.write_bytes(SECRET_TEXT)
    with requests.Session() as visitor:
        assert visitor.post(
            login_cluster.url + "login", files={"username": (None, "ada"), "password": (None, PASSWORD)}
        ).ok
        config = visitor.get(login_cluster.url + "config", timeout=10).json()
        index = next(e["id"] for e in config["dependencies"] if e.get("api_name") == "_load_conversation")
        for poison in ["\u0000", "\ud800", "/tmp/a\u0000b"]:
            body = {
                "x": {"path": poison},
                "data": [0, [[{"role": "user", "content": {"path": str(secret)}}]]],
                "fn_index": index,
                "session_hash": uuid.uuid4().hex[:10],
            }
            reply = visitor.post(
                login_cluster.url + "gradio_api/run/predict",
                data=json.dumps(body),
                headers={"content-type": "application/json"},
                timeout=30,
            )
            assert reply.status_code == 400, reply.text[:300]
    cache = login_cluster.run_dir.parent / "gradio"
    assert not [path for path in cache.rglob("*") if path.is_file() and path.read_bytes() == SECRET_TEXT]


def test_the_sixth_failed_login_through_the_balancer_is_refused(login_cluster: Cluster) -> None:
    """LOGIN_MAX_FAILURES=5 counts for the cluster: failures alternate between the replicas (each would have seen
    only three), and the sixth is refused with 429 wherever it lands. Last here: it locks the address out."""
    login_cluster.wait_ready()
    statuses = [login(login_cluster.url, f"guess-{n}", replica="r1" if n % 2 else "r2").status_code for n in range(6)]
    assert statuses == [400] * 5 + [429]
    refused = login(login_cluster.url, PASSWORD, replica="r1")
    assert refused.status_code == 429 and "Too many failed logins" in refused.json()["detail"]
