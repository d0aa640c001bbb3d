"""cluster: run the whole stack in the foreground: HAProxy on GRADIO_SERVER_PORT, REPLICAS app processes, Redis.

    python deploy/cluster.py --replicas 2

Everything runs under supervisord with deploy/supervisord.conf and deploy/haproxy.cfg, the same files the Docker
image uses; this script only derives their variables from the app's settings (the same environment and `.env`
as `python app.py`). SIGTERM or Ctrl-C stops it all, replicas first, each finishing its replies in flight.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat_backend.config import load_settings  # noqa: E402  (after the path insert: the root is not on it by default)

MAX_REPLICAS = 8  # the APP_SERVER_i lines in deploy/haproxy.cfg
FIRST_PICKED_PORT = 10000  # below: well-known services' ports
PORT_PICKER = random.SystemRandom()  # not the seedable `random`: parallel test workers must not pick alike


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports, chosen outside the kernel's ephemeral range: a port
    from that range can go to some program's outgoing connection before the process it was chosen for binds it."""
    low, high = _ephemeral_ports()
    below, above = (FIRST_PICKED_PORT, low - count), (high + 1, 65536 - count)
    span = max(below, above, key=lambda bounds: bounds[1] - bounds[0])
    for _ in range(100):
        first = PORT_PICKER.randrange(*span)
        if all(_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1 from {span[0]} to {span[1]}")


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range for outgoing connections' ports (Linux's default where it cannot be read)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_env(replicas: int, run_dir: Path) -> dict[str, str]:
    """The environment of supervisord and everything under it: ours, plus the variables derived from it."""
    env = dict(os.environ)
    settings = load_settings(env, ROOT / ".env")
    first_port = int(env.get("FIRST_APP_PORT") or free_ports(replicas))
    redis_port = int(env.get("REDIS_PORT") or free_ports(1))
    host = env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if settings.on_spaces else "127.0.0.1")
    hops = settings.trusted_proxy_hops + 1  # HAProxy is one more proxy in front of the replicas
    env.update(
        REPLICAS=str(replicas),
        FIRST_APP_PORT=str(first_port),
        REDIS_PORT=str(redis_port),
        RUN_DIR=str(run_dir),
        APP_DIR=str(ROOT),
        PYTHON=sys.executable,
        STOP_WAIT_SECONDS=str(int(settings.drain_seconds) + 10),
        HAPROXY_BIND=f"{host}:{env.get('GRADIO_SERVER_PORT') or 7860}",
        TRUSTED_PROXY_HOPS=str(hops),
        HAPROXY_SERVER_TIMEOUT=f"{int(settings.read_timeout) + 30}s",
        REDIS_AUTOSTART="false" if env.get("REDIS_URL") else "true",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("REDIS_URL", f"redis://127.0.0.1:{redis_port}/0")
    env.setdefault("HAPROXY_REQUEST_TIMEOUT", "10s")
    if settings.on_spaces:  # https, inside huggingface.co's iframe: the affinity cookie must be a cross-site one
        env.setdefault("HAPROXY_COOKIE_CROSS_SITE", "1")
    for index in range(replicas):
        env[f"APP_SERVER_{index + 1}"] = f"127.0.0.1:{first_port + index}"
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description="MiniMax Chat behind HAProxy, with Redis")
    parser.add_argument("--replicas", type=int, default=None, help="app processes (default: REPLICAS, or 2)")
    args = parser.parse_args()
    replicas = args.replicas or load_settings(dotenv_path=ROOT / ".env").replicas
    if not 1 <= replicas <= MAX_REPLICAS:
        raise SystemExit(f"--replicas must be between 1 and {MAX_REPLICAS}")
    run_dir = Path(os.environ.get("RUN_DIR") or tempfile.mkdtemp(prefix="chat-cluster-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    env = cluster_env(replicas, run_dir)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(ROOT / "deploy" / "supervisord.conf")],
        cwd=ROOT,
        env=env,
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, frame: supervisor.send_signal(signal.SIGTERM))
    public = f"http://{env['HAPROXY_BIND'].replace('0.0.0.0', '127.0.0.1')}/"
    while supervisor.poll() is None:
        try:
            if requests.get(public + "healthz/ready", timeout=1).status_code == 200:
                print(f"Serving {replicas} replicas on {public}", flush=True)
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)  # waiting for the first replica to start: nothing to wait on but its port
    sys.exit(supervisor.wait())


if __name__ == "__main__":
    main()
