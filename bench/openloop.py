"""openloop: new chats arrive at a fixed rate whatever the server's state, as a crowd does, and bursts.

Compares one `python app.py` with 1 and 2 replicas behind HAProxy (`deploy/cluster.py`, Redis included), each
against the same stand-in API and the same Poisson arrival times; a direct client gives the floor at each load.
CPU per chat counts every process of the set-up (HAProxy, Redis, supervisord and the replicas). Run from the
repository root with `python bench/run.py --open-loop` (see there for the options).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.loadgen import GradioChat, Timing, direct_turn
from tests.app_process import ROOT, AppProcess, free_port, start_fake_api

HOST = "127.0.0.1"
MODEL = "abab6.5s-chat"
QUESTION = "Tell me something."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SECONDS = 5.0


@dataclass
class Load:
    """A Poisson rate (chats a second for `seconds`) or a burst (`chats` at once)."""

    rate: float = 0.0
    seconds: float = 0.0
    chats: int = 0

    @property
    def label(self) -> str:
        return f"{self.rate:g}/s for {self.seconds:g} s" if self.rate else f"burst of {self.chats}"


@dataclass
class Result:
    setup: str
    load: Load
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    failed: int = 0
    cpu_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def tree_cpu(root: int) -> float:
    """User + system seconds of `root` and every living descendant."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        total += times.get(pid, 0.0)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return total


def arrivals(load: Load, seed: int = 7) -> list[float]:
    """Start offsets in seconds: exponential gaps at `load.rate`, or all at 0 for a burst."""
    if not load.rate:
        return [0.0] * load.chats
    rng, offsets, at = random.Random(seed), [], 0.0
    while (at := at + rng.expovariate(load.rate)) < load.seconds:
        offsets.append(at)
    return offsets


async def run_load(load: Load, chat: Callable[[], Coroutine[Any, Any, Timing]]) -> list[Timing]:
    """Start one chat at each arrival time, never waiting for earlier ones: the open loop."""
    loop, tasks = asyncio.get_running_loop(), list[asyncio.Task[Timing]]()
    started = loop.time()
    for offset in arrivals(load):
        await asyncio.sleep(max(0.0, started + offset - loop.time()))
        tasks.append(asyncio.create_task(chat()))
    return list(await asyncio.gather(*tasks))


async def measure(setup: str, load: Load, chat: Callable[[], Coroutine[Any, Any, Timing]], root: int | None) -> Result:
    result = Result(setup, load)
    before = tree_cpu(root) if root else 0.0
    for timing in await run_load(load, chat):
        if timing.ok and timing.ttft is not None and timing.total is not None:
            result.ttft.append(timing.ttft)
            result.total.append(timing.total)
        else:
            result.failed += 1
            result.errors.append(timing.error)
    result.cpu_seconds = tree_cpu(root) - before if root else 0.0
    return result


class App(AppProcess):
    """`python app.py`, ready once /healthz answers: rendering the page under load can take longer than a second."""

    ready_path, probe_seconds = "healthz", 5.0

    def start(self, timeout: float = 300.0) -> App:
        super().start(timeout)
        return self


class Cluster:
    """`python deploy/cluster.py --replicas N`, public on its own port."""

    def __init__(self, replicas: int, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.env = {**AppProcess(log_path).env, **env, "GRADIO_SERVER_PORT": str(self.port)}
        self.replicas, self.log_path = replicas, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> Cluster:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "deploy/cluster.py", "--replicas", str(self.replicas)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cluster exited:\n{self.log_path.read_text()[-3000:]}")
            if f"Serving {self.replicas} replicas" in self.log_path.read_text(errors="replace"):
                time.sleep(3)  # the first replica answered; give the others HAProxy's `rise 2` checks
                return self
            time.sleep(0.5)  # polling the log: nothing else to wait on
        raise TimeoutError("cluster did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def idle_cost(root: int) -> float:
    """Milliseconds of CPU a second that the set-up spends with nobody chatting."""
    before = tree_cpu(root)
    time.sleep(IDLE_SECONDS)
    return (tree_cpu(root) - before) * 1000 / IDLE_SECONDS


def new_chat(chat: GradioChat) -> Callable[[], Coroutine[Any, Any, Timing]]:
    """One new visitor: opens the page, then sends one message (a failed page load is that chat's error)."""

    async def one() -> Timing:
        try:
            session = await chat.open_page()
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            return Timing(error=f"page load: {exc!r}"[:300])
        return await chat.turn(QUESTION, [], session)

    return one


async def run_setup(setup: str, port: int, root: int, loads: list[Load], marker: bytes) -> list[Result]:
    chat = await GradioChat.discover(HOST, port, marker)
    one = new_chat(chat)
    results = []
    for load in loads:
        print(f"{setup}: {load.label}", flush=True)
        results.append(await measure(setup, load, one, root))
        await asyncio.sleep(2)  # let the last replies' clean-up finish before the next load
    return results


def main(args: argparse.Namespace) -> str:
    loads = [Load(rate=rate, seconds=args.seconds) for rate in args.rates] + [Load(chats=n) for n in args.bursts]
    fake, fake_port = start_fake_api(ttft=args.ttft, tokens=args.tokens, rate=args.rate)
    env = {
        "AIMLAPI_BASE_URL": f"http://{HOST}:{fake_port}/v1",
        "AIMLAPI_KEY": "bench",
        "RATE_LIMIT_PER_SESSION": "0",
        "RATE_LIMIT_PER_ADDRESS": "0",
        "MAX_UPSTREAM_PER_ADDRESS": "100000",
    }  # all load comes from one address
    logs = args.out / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    marker = f"tok{args.tokens - 1}".encode()
    results: list[Result] = []
    idle: dict[str, float] = {}
    started = time.monotonic()
    try:
        _wait_for(f"http://{HOST}:{fake_port}/v1/models")
        question = [{"role": "user", "content": QUESTION}]
        for load in loads:
            print(f"direct: {load.label}", flush=True)
            results.append(
                asyncio.run(measure("direct", load, lambda: direct_turn(HOST, fake_port, question, MODEL), None))
            )
        setups = [("1 process", 0)] + [(f"HAProxy + {n} replica{'s' * (n > 1)}", n) for n in args.replicas]
        for setup, replicas in setups:
            server: App | Cluster = (
                App(logs / "openloop-app.log", **env)
                if not replicas
                else Cluster(replicas, logs / f"openloop-cluster-{replicas}.log", **env)
            )
            server.start()
            try:
                assert server.process is not None
                root = server.process.pid
                idle[setup] = idle_cost(root)
                results += asyncio.run(run_setup(setup, server.port, root, loads, marker))
            finally:
                server.stop()
    finally:
        fake.terminate()
        fake.wait()
    return render(results, idle, args, time.monotonic() - started)


def _wait_for(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)  # the stand-in is starting


def _median(values: list[float]) -> float | None:
    return sorted(values)[len(values) // 2] if values else None


def _p95(values: list[float]) -> float | None:
    return sorted(values)[min(len(values) - 1, int(0.95 * len(values)))] if values else None


def render(results: list[Result], idle: dict[str, float], args: argparse.Namespace, elapsed: float) -> str:
    direct = {r.load.label: r for r in results if r.setup == "direct"}

    def ratio(result: Result, pick: Callable[[list[float]], float | None], values: str) -> str:
        mine, floor = pick(getattr(result, values)), pick(getattr(direct[result.load.label], values))
        return f"{mine / floor:.2f}×" if mine and floor else "—"

    lines = [
        "## Open loop: new chats at a fixed rate, 1 process vs replicas behind HAProxy",
        "",
        (
            f"Stand-in API: {args.ttft * 1000:g} ms to first token, "
            f"then {args.tokens} tokens at {args.rate:g} tokens/s. "
            f"Command: `python bench/run.py --open-loop --rates {','.join(f'{r:g}' for r in args.rates)} "
            f"--seconds {args.seconds:g} --bursts {','.join(map(str, args.bursts))} "
            f"--replicas {','.join(map(str, args.replicas))}` ({elapsed:.0f} s, {os.cpu_count()} cores). "
            "Each chat opens a page (untimed) and sends one message; times are from sending. Ratios are to direct at "
            "the same load and arrival times. CPU per chat sums every process of the set-up (HAProxy, Redis, "
            "supervisord, replicas)."
        ),
        "",
        (
            "| set-up | load | chats | TTFT median ×direct | TTFT p95 ×direct | total median ×direct "
            "| total p95 ×direct | CPU ms / chat | failed |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        if result.setup == "direct":
            continue
        chats = len(result.ttft) + result.failed
        cpu = f"{result.cpu_seconds * 1000 / chats:.0f}" if chats else "—"
        lines.append(
            f"| {result.setup} | {result.load.label} | {chats} | {ratio(result, _median, 'ttft')} "
            f"| {ratio(result, _p95, 'ttft')} | {ratio(result, _median, 'total')} | {ratio(result, _p95, 'total')} "
            f"| {cpu} | {result.failed} |"
        )
    lines += ["", "| set-up | idle CPU ms/s | capacity: highest rate with p95 TTFT ≤ 1.5× direct |", "|---|---|---|"]
    for setup, cost in idle.items():
        within = [
            r.load.rate
            for r in results
            if r.setup == setup
            and r.load.rate
            and not r.failed
            and (p := _p95(r.ttft))
            and (floor := _p95(direct[r.load.label].ttft))
            and p <= 1.5 * floor
        ]
        lines.append(f"| {setup} | {cost:.0f} | {f'{max(within):g} chats/s' if within else 'below the lowest rate'} |")
    errors = sorted({e for r in results for e in r.errors})[:5]
    if errors:
        lines += ["", "Failures seen: " + "; ".join(f"`{e[:120]}`" for e in errors)]
    return "\n".join(lines) + "\n"
