"""How the app serves: Spaces binding, optional login, and start-up that stops on a bad setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.app_process import ROOT, AppProcess
from tests.fake_api import FakeAPI


def test_on_spaces_it_binds_every_interface(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "app.log", SPACE_ID="someone/minimax-chat", AIMLAPI_BASE_URL=shared_api.base_url).start()
    try:
        assert f"http://0.0.0.0:{app.port}" in app.logs()
    finally:
        app.stop()


def test_login_is_required_when_a_username_and_password_are_set(shared_api: FakeAPI, tmp_path: Path) -> None:
    app = AppProcess(tmp_path / "app.log", APP_USERNAME="ada", APP_PASSWORD="lovelace-1815",
                     AIMLAPI_BASE_URL=shared_api.base_url).start()
    try:
        with requests.Session() as browser:
            assert browser.get(f"{app.url}config").status_code == 401
            wrong = browser.post(f"{app.url}login", data={"username": "ada", "password": "nope"})
            assert wrong.status_code == 400
            assert browser.post(f"{app.url}login", data={"username": "ada", "password": "lovelace-1815"}).ok
            assert "components" in browser.get(f"{app.url}config").json()
    finally:
        app.stop()


def test_a_malformed_setting_stops_start_up_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "AIMLAPI_READ_TIMEOUT": "soon", "HOME": str(ROOT)}
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "AIMLAPI_READ_TIMEOUT must be a number" in done.stderr and "Traceback" not in done.stderr
