"""The app under test, pointed at the stand-in API: `python app.py` in a child process (`AppProcess`), or the
same app built by `app.build` and served from the test process itself (`AppInProcess`). `make_app` picks one by
the environment a test asks for."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from chat_backend.config import Settings, load_settings
from deploy.cluster import free_ports

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
    """A free loopback port no outgoing connection can take before the process it is for binds it."""
    return free_ports(1)


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
        if wait_until_serving(self.url + self.ready_path, timeout, self._exited, self.probe_seconds):
            return self
        self.stop()
        raise TimeoutError(f"app.py did not serve {self.url} within {timeout}s:\n{self.logs()}")

    def _exited(self) -> None:
        assert self.process is not None, "started"
        if self.process.poll() is not None:
            raise RuntimeError(f"app.py exited with {self.process.returncode}:\n{self.logs()}")

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


def wait_until_serving(url: str, timeout: float, check: Callable[[], None], probe_seconds: float = 1.0) -> bool:
    """Whether `url` answered 200 within `timeout`; `check` raises if the server can no longer come up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        try:
            if requests.get(url, timeout=probe_seconds).status_code == 200:
                return True
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or slow on a loaded machine
            pass
        time.sleep(0.2)  # polling the port: nothing to wait on but the server's socket
    return False


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # as `python app.py` logs


class AppInProcess:
    """`app.build` for the same environment, served on a port of its own from this process: the page, the API
    and the routes `python app.py` serves, without starting an interpreter and importing Gradio for each app
    (seconds each on 2 cores).

    Gradio reads its GRADIO_* variables from this process's own environment, so every app here shares one upload
    folder (GRADIO_TEMP_DIR, set for the test session in conftest.py) and needs none of its own; `make_app`
    sends an environment that sets any to an `AppProcess`. `logs()` holds every log record of this process at
    INFO and above while the app runs, as `python app.py` writes them: the app's own and those of any other app
    running at the same time. What Gradio prints (a handler's traceback) goes to pytest's captured output.
    """

    process: None = None  # none of its own: what measures a process's memory needs an AppProcess

    def __init__(self, log_path: Path, settings: Settings | None = None, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        self.env = {"GRADIO_TEMP_DIR": os.environ["GRADIO_TEMP_DIR"], "DATA_DIR": str(log_path.parent / "data"), **env}
        self.settings = settings  # served as given, if given, instead of those `env` makes
        self.running: tuple[Any, Any, logging.Handler] | None = None  # the Blocks, its ChatApp, the log's handler

    def start(self, timeout: float = 60.0) -> AppInProcess:
        import app  # Gradio's import, once per test process

        chat_app = app.ChatApp(self.settings or load_settings(self.env, None))
        demo, options = app.blocks(chat_app)
        self.running = demo, chat_app, APP_LOGS.add(self.log_path)
        chat_app.client.catalogue.refresh_in_background()  # as `main` does
        options |= {"server_name": "127.0.0.1", "server_port": self.port}
        demo.launch(prevent_thread_lock=True, quiet=True, **options)
        if wait_until_serving(self.url, timeout, lambda: None):
            return self
        self.stop()
        raise TimeoutError(f"the app did not serve {self.url} within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.running:
            demo, chat_app, log = self.running
            demo.close()
            chat_app.client.close()
            APP_LOGS.remove(log)
            self.running = None


class _AppLogs:
    """The log files of the apps served in this process. While any runs, this process logs at INFO, as
    `python app.py` does (Gradio's HTTP client kept to warnings, as there); once the last stops, the levels are
    what they were, so that a test reading `caplog` sees what it would without an app."""

    def __init__(self) -> None:
        self.files: list[logging.Handler] = []
        self.levels: dict[str, int] = {}

    def add(self, path: Path) -> logging.Handler:
        path.write_bytes(b"")  # a new log for each start, as AppProcess's
        # Appending, so that the file opens again after uvicorn's logging set-up closes every handler in the
        # process, as it does whenever an app here launches.
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.setLevel(logging.INFO)
        if not self.files:
            self.levels = {name: logging.getLogger(name).level for name in ("", "httpx")}
            if logging.getLogger().getEffectiveLevel() > logging.INFO:
                logging.getLogger().setLevel(logging.INFO)
            logging.getLogger("httpx").setLevel(logging.WARNING)
        self.files.append(handler)
        logging.getLogger().addHandler(handler)
        return handler

    def remove(self, handler: logging.Handler) -> None:
        logging.getLogger().removeHandler(handler)
        handler.close()
        self.files.remove(handler)
        if not self.files:
            for name, level in self.levels.items():
                logging.getLogger(name).setLevel(level)


APP_LOGS = _AppLogs()


# What only a process of its own can have: variables Gradio or app.py read from the process's environment
# (GRADIO_*, APP_RAISE_ERRORS), a Space's start-up (SPACE_*, SYSTEM) and offline mode's stand-in API (OFFLINE).
PROCESS_ONLY = ("GRADIO_", "SPACE_", "SYSTEM", "OFFLINE", "APP_RAISE_ERRORS")


def make_app(log_path: Path, *, process: bool = False, **env: str) -> AppProcess | AppInProcess:
    """The app for `env`, not started: in this process unless `process` is set or `env` sets something only a
    process of its own can have (`PROCESS_ONLY`). A process gets an upload folder of its own beside the log."""
    if process or any(name.startswith(PROCESS_ONLY) for name in env):
        return AppProcess(log_path, **{"GRADIO_TEMP_DIR": str(log_path.parent / "gradio"), **env})
    return AppInProcess(log_path, **env)


def start_fake_api(**options: object) -> tuple[subprocess.Popen[bytes], int]:
    """The stand-in API in its own process (`python -m tests.fake_api`), for the benchmarks: the process and its
    port. Each option is one of its command-line flags: `ttft=0.05` becomes `--ttft 0.05`."""
    port = free_port()
    flags = [part for name, value in options.items() for part in (f"--{name}", str(value))]
    command = [sys.executable, "-m", "tests.fake_api", "--port", str(port), *flags]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port
