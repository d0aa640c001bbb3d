"""Two replicas + HAProxy + Redis on loopback, started by `python deploy/cluster.py` (deploy/supervisord.conf and
deploy/haproxy.cfg, as in the Docker image), against the stand-in API: affinity, failover, drain, Redis loss."""

from __future__ import annotations

import concurrent.futures
import http.server
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from gradio_client import Client

from deploy.cluster import cluster_env
from tests.app_process import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port
from tests.cluster import ADDRESS_LIMIT, TOKEN, Cluster, needs_haproxy_and_redis, status_of
from tests.fake_api import FakeAPI, Reply
from tests.helpers import DEFAULTS, SERVER_KEY, gradio_client, notices

pytestmark = needs_haproxy_and_redis
SLOW = " ".join(f"w{i}" for i in range(60))  # 60 chunks, 3 s at 0.05 s each


@pytest.fixture(scope="module")
def cluster_api() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        yield api


@pytest.fixture(scope="module")
def cluster(cluster_api: FakeAPI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("cluster"), cluster_api)
    try:
        running.wait_ready(timeout=100)  # a busy machine; under pytest-timeout so the log shows
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(cluster: Cluster, cluster_api: FakeAPI) -> Iterator[FakeAPI]:
    """The stand-in, reset, with a replica up (a test before may have killed or drained one)."""
    cluster.wait_ready(names=())
    cluster_api.reset()
    yield cluster_api
    cluster_api.release()


def visitor(cluster: Cluster) -> tuple[Client, str]:
    """A new gradio_client session through the balancer and the replica its cookie pins it to."""
    client = gradio_client(cluster.url)
    return client, client.cookies["SERVERID"]


def visitors_on_both(cluster: Cluster) -> dict[str, Client]:
    """One session on each replica (leastconn spreads new sessions; a few tries at most)."""
    cluster.wait_ready()
    found: dict[str, Client] = {}
    for _ in range(8):
        client, name = visitor(cluster)
        found.setdefault(name, client)
        if len(found) == 2:
            return found
    raise AssertionError(f"new sessions all went to {list(found)}")


def submit(client: Client, text: str) -> Any:
    return client.submit({"text": text, "files": []}, *DEFAULTS.values(), api_name="/chat")


def streaming(job: Any, timeout: float = 20) -> None:
    """Until the client has text from the reply: its event stream is open on the replica."""
    deadline = time.monotonic() + timeout
    while not job.outputs():
        assert time.monotonic() < deadline, "no streamed text arrived"
        time.sleep(0.05)  # polling the client's received updates


def final(job: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """The reply's messages: /chat answers (messages, model); its first part is one text or a list of messages."""
    result, _model = job.result(timeout=timeout)
    return result if isinstance(result, list) else [{"role": "assistant", "content": result}]


@pytest.mark.parametrize("source", ["compose", "eight replicas"])
def test_the_one_haproxy_config_is_valid_for_each_set_up(source: str) -> None:
    if source == "compose":
        env = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["balancer"]["environment"]
    else:
        env = {
            "HAPROXY_BIND": "127.0.0.1:7860",
            "HAPROXY_SERVER_TIMEOUT": "90s",
            "HAPROXY_REQUEST_TIMEOUT": "10s",
            **{f"APP_SERVER_{i}": f"127.0.0.1:{7860 + i}" for i in range(1, 9)},
        }
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(ROOT / "deploy" / "haproxy.cfg")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    warnings = [
        line
        for line in (check.stdout + check.stderr).splitlines()
        if "WARNING" in line and "could not resolve address 'app" not in line
    ]  # compose's names exist only inside compose
    assert not warnings


@pytest.mark.parametrize("space_id", ["someone/minimax-chat", ""])
def test_the_cluster_asks_for_a_cross_site_cookie_on_a_space_only(
    space_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HAPROXY_COOKIE_CROSS_SITE", raising=False)
    monkeypatch.setenv("SPACE_ID", space_id)
    assert ("HAPROXY_COOKIE_CROSS_SITE" in cluster_env(2, tmp_path)) == bool(space_id)


class _Answers200(http.server.BaseHTTPRequestHandler):
    """A stand-in replica: every GET (the page, the health check) answers 200."""

    def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("cross_site", "expected"), [(True, {"secure", "samesite=none", "partitioned"}), (False, set())]
)
def test_the_affinity_cookie_is_a_cross_site_one_only_when_asked(cross_site: bool, expected: set[str]) -> None:
    """On a Space the page lives in huggingface.co's iframe, where only such a cookie keeps the session's replica."""
    replica = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers200)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    port = free_port()
    env = {
        **os.environ,
        "HAPROXY_BIND": f"127.0.0.1:{port}",
        "HAPROXY_SERVER_TIMEOUT": "30s",
        "HAPROXY_REQUEST_TIMEOUT": "10s",
        "APP_SERVER_1": f"127.0.0.1:{replica.server_port}",
        **({"HAPROXY_COOKIE_CROSS_SITE": "1"} if cross_site else {}),
    }
    balancer = subprocess.Popen(["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env)
    try:
        deadline = time.monotonic() + 15
        while status_of(f"http://127.0.0.1:{port}/") != 200:  # up once two health checks passed
            assert time.monotonic() < deadline, "HAProxy never sent the request on"
            time.sleep(0.2)  # polling the balancer: it offers nothing to wait on
        cookie = requests.get(f"http://127.0.0.1:{port}/", timeout=5).headers["Set-Cookie"]
    finally:
        balancer.terminate()
        balancer.wait(10)
        replica.shutdown()
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert cookie.startswith("SERVERID=r1") and "httponly" in attributes
    assert attributes - {"httponly", "path=/"} == expected


def test_a_session_keeps_its_replica_and_its_history(cluster: Cluster, api: FakeAPI) -> None:
    cluster.wait_ready()
    client, name = visitor(cluster)
    other = "r2" if name == "r1" else "r1"
    before = cluster.messages(name), cluster.messages(other)
    api.script(Reply(text="Paris."), Reply(text="About 2.1 million."))
    final(submit(client, "Capital of France?"))
    final(submit(client, "Population?"))
    assert (cluster.messages(name), cluster.messages(other)) == (before[0] + 2, before[1])
    assert [m["content"] for m in api.chat_requests()[1].body["messages"][1:]] == [
        "Capital of France?",
        "Paris.",
        "Population?",
    ]  # the second message found the first one's session
    forwarded = api.chat_requests()[0]
    assert "x-forwarded-for" not in {key.lower() for key in forwarded.headers}  # never passed upstream


def test_health_is_cheap_and_metrics_need_the_token(cluster: Cluster, api: FakeAPI) -> None:
    assert requests.get(cluster.url + "healthz", timeout=5).text == "ok"
    assert requests.get(cluster.url + "metrics", timeout=5).status_code == 404
    wrong = requests.get(cluster.url + "metrics", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert wrong.status_code == 404
    page = requests.get(cluster.url + "metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).text
    for name in (
        "chat_messages_total",
        "chat_replies_streaming",
        "chat_time_to_first_token_seconds_bucket",
        "chat_upstream_retries_total",
        "chat_spent_usd_total",
    ):
        assert name in page
    assert SERVER_KEY not in page and not api.chat_requests()  # no upstream call for health or metrics


def test_half_sent_requests_are_cut_by_the_balancer(cluster: Cluster, api: FakeAPI) -> None:
    sockets = [socket.create_connection(("127.0.0.1", cluster.port), timeout=6) for _ in range(20)]
    for sock in sockets:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
    started = time.monotonic()
    answers = [sock.recv(4096) for sock in sockets]  # HAProxy answers 408 and closes after 2 s
    assert time.monotonic() - started < 5
    assert all(answer.startswith(b"HTTP/1.1 408") or answer == b"" for answer in answers)
    for sock in sockets:
        sock.close()
    assert status_of(cluster.url + "healthz") == 200


def test_chats_go_on_when_redis_stops(cluster: Cluster, api: FakeAPI) -> None:
    cluster.supervisor.supervisor.stopProcess("redis")
    try:
        for _ in range(2):
            client, _name = visitor(cluster)
            assert final(submit(client, "no redis"))[0]["content"] == "Hello from the stand-in."
    finally:
        cluster.supervisor.supervisor.startProcess("redis")


@pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"), reason="needs Debian's chromium")
def test_a_browser_chat_through_the_balancer_with_stop_attachment_export_and_share(
    cluster: Cluster, api: FakeAPI, tmp_path: Path
) -> None:
    """Upload, queue, stream, Stop and download all reach the replica that holds the page's session; the shared
    link it makes opens on the other replica."""
    from playwright.sync_api import expect, sync_playwright

    notes = tmp_path / "notes.txt"
    notes.write_text("Budget approved: 42,000.\n", encoding="utf-8")

    api.script(Reply(text=" ".join(f"slow{i}" for i in range(400)), delay=0.05), Reply(text="Next reply."))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(accept_downloads=True)
        page.set_default_timeout(15_000)
        page.goto(cluster.url)
        box = page.locator("#chat-input textarea")
        box.fill("Tell me a long story")
        box.press("Enter")
        expect(page.locator('[data-testid="bot"]').first).to_contain_text("slow5")
        page.get_by_role("button", name="Stop").click()
        # that it arrives, through the balancer (test_stop.py bounds how fast): the page, two replicas and HAProxy
        # share 2 cores with the other test worker here
        assert api.chat_requests()[0].client_disconnected.wait(15), "Stop did not reach the replica"
        expect(box).to_be_enabled()
        page.locator('#chat-input input[data-testid="file-upload"]').set_input_files(str(notes))
        expect(page.locator("#chat-input").get_by_role("listitem", name="File thumbnail")).to_be_visible()
        box.fill("Something else")
        box.press("Enter")
        expect(page.get_by_text("Next reply.")).to_be_visible()
        assert "Budget approved: 42,000." in str(api.chat_requests()[1].body["messages"][-1]["content"])
        page.get_by_role("button", name="Toggle Sidebar").click()
        page.get_by_role("button", name="Export conversation").click()
        with page.expect_download() as download:
            page.locator("#export-md").click()
        assert "Next reply." in Path(download.value.path()).read_text(encoding="utf-8")
        [cookie] = [c for c in page.context.cookies() if c["name"] == "SERVERID"]
        assert cookie["value"] in ("r1", "r2")

        page.get_by_role("button", name="Share conversation").click()  # the link opens on the other replica
        link = page.locator("#share-link").locator("input, textarea")
        expect(link).to_have_value(re.compile(r"/share/[A-Za-z0-9_-]{24}$"))
        path = link.input_value().split("/", 3)[3]
        other = "r2" if cookie["value"] == "r1" else "r1"
        assert requests.get(cluster.replica_url(other) + path, timeout=10).status_code == 200
        viewer = browser.new_context()
        viewer.add_cookies([{"name": "SERVERID", "value": other, "url": cluster.url}])
        shared = viewer.new_page()
        assert shared.goto(cluster.url + path).status == 200
        expect(shared.get_by_text("Next reply.")).to_be_visible()
        browser.close()


def test_kill_9_of_a_replica_spares_the_other_and_its_visitors_move(cluster: Cluster, api: FakeAPI) -> None:
    sessions = visitors_on_both(cluster)
    api.script_for("victim", Reply(text=SLOW, delay=0.05))
    api.script_for("survivor", Reply(text=SLOW, delay=0.05))
    victim, survivor = submit(sessions["r1"], "victim"), submit(sessions["r2"], "survivor")
    streaming(victim)
    streaming(survivor)
    os.kill(cluster.replica_pid("r1"), signal.SIGKILL)
    assert final(survivor)[0]["content"] == SLOW
    with pytest.raises(Exception):  # noqa: B017  (gradio_client raises its own or httpx's errors here)
        final(victim)
    before = cluster.messages("r2")
    api.script_for("again", Reply(text="Served by the live one."))
    assert final(submit(sessions["r1"], "again"))[0]["content"] == "Served by the live one."
    assert cluster.messages("r2") == before + 1


def test_sigterm_drains_a_reply_in_flight_and_refuses_new_ones(cluster: Cluster, api: FakeAPI) -> None:
    client, name = visitor(cluster)
    api.script_for("in flight", Reply(text=SLOW, delay=0.05, stall_after=10))  # holds until released below
    job = submit(client, "in flight")
    streaming(job)
    pid = cluster.replica_pid(name)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while status_of(cluster.replica_url(name) + "healthz/ready") != 503:
        assert time.monotonic() < deadline, "the draining replica still says ready"
        time.sleep(0.05)  # polling the replica's readiness
    direct = gradio_client(cluster.replica_url(name))  # past the balancer, straight to the draining one
    [refusal] = notices(final(submit(direct, "too late")))
    assert "restarting" in refusal["content"].lower() and not any("too late" in str(r.body) for r in api.requests)
    api.release()
    assert final(job)[0]["content"] == SLOW  # finished, not cut
    deadline = time.monotonic() + 15
    while _alive(pid):
        assert time.monotonic() < deadline, "the drained replica did not exit"
        time.sleep(0.1)  # waiting for another process to exit


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_sessions_of_one_address_spread_over_both_replicas_and_share_its_limit(cluster: Cluster, api: FakeAPI) -> None:
    """Last in this file: it uses up the address's allowance. 60 messages over two replicas with a shared limit of
    40 a minute leave at least 20 refused; limits kept per replica would refuse fewer (none at all if fresh)."""
    sessions = visitors_on_both(cluster)

    def thirty(client: Client) -> list[list[dict[str, Any]]]:
        # one message at a time on each client: gradio_client shares one event stream among a client's jobs and,
        # used from several threads at once, sometimes cancels a job that starts as that stream closes
        return [final(submit(client, f"burst {i}")) for i in range(30)]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the two replicas at once
        replies = [reply for replies in pool.map(thirty, sessions.values()) for reply in replies]
    refusals = ("Slow down", "Server busy")  # the shared rate, or one session's share of the upstream slots
    refused = [r for r in replies if any(str(n["metadata"]["title"]).endswith(refusals) for n in notices(r))]
    assert cluster.messages("r1") > 0 and cluster.messages("r2") > 0
    assert len(refused) >= 60 - ADDRESS_LIMIT
