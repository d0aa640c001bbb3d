"""Runs app.py in a child process, as `python app.py` would, pointed at the stand-in API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppProcess:
    """`python app.py` with the given environment; `url` once started, `logs()` for what it printed."""

    ready_path = ""  # started once this page answers 200
    probe_seconds = 1.0  # how long one look at it may take

    def __init__(self, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIMLAPI_", "CHAT_", "APP_", "GRADIO_", "SPACE_"))
        }
        self.env.update(
            GRADIO_SERVER_PORT=str(self.port),
            GRADIO_ANALYTICS_ENABLED="False",
            PYTHONUNBUFFERED="1",
            DATA_DIR=str(log_path.parent / "data"),
        )  # never the repository's ./data
        self.env.update(env)
        self.command = [sys.executable, "app.py"]
        self.cwd = ROOT  # another checkout's folder runs that checkout's app (bench/compare.py)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> AppProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if requests.get(self.url + self.ready_path, timeout=self.probe_seconds).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
                pass
            time.sleep(0.2)  # polling the port: nothing to wait on but the child's socket
        self.stop()
        raise TimeoutError(f"app.py did not serve {self.url} within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_fake_api(**options: object) -> tuple[subprocess.Popen[bytes], int]:
    """The stand-in API in its own process (`python -m tests.fake_api`), for the benchmarks: the process and its
    port. Each option is one of its command-line flags: `ttft=0.05` becomes `--ttft 0.05`."""
    port = free_port()
    flags = [part for name, value in options.items() for part in (f"--{name}", str(value))]
    command = [sys.executable, "-m", "tests.fake_api", "--port", str(port), *flags]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port
