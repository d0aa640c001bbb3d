"""The cluster the deploy tests start: `python deploy/cluster.py` (HAProxy, Redis and two replicas under
supervisord, as in the Docker image) on loopback, with handles on what runs under it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest
import requests
from supervisor.xmlrpc import SupervisorTransport

from deploy.cluster import free_ports
from tests.app_process import ROOT, free_port
from tests.fake_api import FakeAPI
from tests.helpers import SERVER_KEY

needs_haproxy_and_redis = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("haproxy", "redis-server")) and not os.environ.get("CI"),
    reason="needs Debian's haproxy and redis-server",
)


TOKEN = "metrics-token-for-tests"


ADDRESS_LIMIT = 40  # messages a minute from one address, over both replicas together


class Cluster:
    """`python deploy/cluster.py --replicas 2` (with `settings` over the defaults below) and handles on what runs
    under it."""

    def __init__(self, folder: Path, api: FakeAPI, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.first = free_ports(2)
        self.run_dir = folder / "run"
        self.run_dir.mkdir()
        self.log_path = folder / "cluster.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIMLAPI_", "CHAT_", "APP_", "GRADIO_", "SPACE_", "RATE_", "REDIS_"))
        }
        env.update(
            GRADIO_SERVER_PORT=str(self.port),
            GRADIO_ANALYTICS_ENABLED="False",
            GRADIO_TEMP_DIR=str(folder / "gradio"),
            AIMLAPI_BASE_URL=api.base_url,
            AIMLAPI_KEY=SERVER_KEY,
            AIMLAPI_READ_TIMEOUT="20",
            AIMLAPI_RETRY_BUDGET="1",
            RATE_LIMIT_PER_SESSION="0",
            RATE_LIMIT_PER_ADDRESS=str(ADDRESS_LIMIT),
            METRICS_TOKEN=TOKEN,
            DRAIN_SECONDS="20",
            FIRST_APP_PORT=str(self.first),
            RUN_DIR=str(self.run_dir),
            HAPROXY_REQUEST_TIMEOUT="2s",
        )
        env.update(settings)  # a test's own settings over the ones above
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "deploy/cluster.py", "--replicas", "2"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.supervisor = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{self.run_dir}/supervisor.sock")
        )

    def replica_url(self, name: str) -> str:
        """The direct address of replica `name` (r1, r2: HAProxy's cookie values)."""
        return f"http://127.0.0.1:{self.first + int(name[1:]) - 1}/"

    def pid(self, program: str) -> int:
        return self.supervisor.supervisor.getProcessInfo(program)["pid"]

    def replica_pid(self, name: str) -> int:
        return self.pid(f"app:app_{self.first + int(name[1:]) - 1}")

    def wait_ready(self, names: tuple[str, ...] = ("r1", "r2"), timeout: float = 60.0) -> None:
        """Until HAProxy sends requests to the replicas `names` (any one if empty): it checks every second."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.logs()
            if (all if names else any)(self._balanced_to(name) for name in names or ("r1", "r2")):
                return
            time.sleep(0.3)  # polling HAProxy's view: nothing to wait on
        raise TimeoutError(f"cluster not ready:\n{self.logs()}")

    def _balanced_to(self, name: str) -> bool:
        """HAProxy sends a request pinned to `name` there: it answers, and no new cookie moves it elsewhere."""
        try:
            answer = requests.get(self.url + "healthz/ready", cookies={"SERVERID": name}, timeout=2)
        except requests.RequestException:
            return False
        return answer.status_code == 200 and "set-cookie" not in answer.headers

    def messages(self, name: str) -> float:
        """Messages replica `name` received, from its /metrics."""
        text = requests.get(
            self.replica_url(name) + "metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        ).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("chat_messages_total"))

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def status_of(url: str) -> int:
    """The status a GET of `url` answers with; 0 when nothing answers."""
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return 0
