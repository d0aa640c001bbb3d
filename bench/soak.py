"""soak: many chat turns from many simultaneous clients while the upstream fails at random.

Starts the stand-in API in chaos mode (a share of calls fail in random ways: 5xx, 429, HTML pages, drops,
resets, stalls, garbled streams, errors inside the stream, refused connections) and `python app.py`
against it, then has CLIENTS browser-like clients chat until TURNS turns are done or TIME runs out. Loopback
only; bounded in count and time. Reports turns completed, notices shown, unhandled exceptions, stuck
sessions, and the server's threads, open files and memory before and after. Exits 1 if anything is off.

    python bench/soak.py                       # 1,000 turns, 32 clients, 20% failures
    python bench/soak.py --turns 60 --clients 8   # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import GradioChat  # noqa: E402
from bench.run import rss_mb  # noqa: E402
from tests.app_process import AppProcess, free_port  # noqa: E402

HOST = "127.0.0.1"
TOKENS = 20
MARKER = f"tok{TOKENS - 1}".encode()
TURN_TIMEOUT = 60.0  # a turn not finished by then counts as a stuck session
TURNS_PER_CONVERSATION = 6  # then the client opens a new page, as people start new chats


@dataclass
class Tally:
    turns: int = 0
    replies: int = 0
    notices: int = 0
    lost: int = 0  # neither a reply nor a notice: what a person would see as nothing happening
    stuck: int = 0
    errors: list[str] = field(default_factory=list)


def resources(pid: int) -> dict[str, float]:
    return {"threads": len(os.listdir(f"/proc/{pid}/task")), "open files": len(os.listdir(f"/proc/{pid}/fd")),
            "RSS MB": round(rss_mb(pid), 1)}


async def client(chat: GradioChat, tally: Tally, budget: list[int], deadline: float, rng: random.Random) -> None:
    """Chat turn after turn in one conversation, starting a new one now and then, until the work is done."""
    history: list[dict[str, str]] = []
    session = await chat.open_page()
    while budget[0] > 0 and time.monotonic() < deadline:
        budget[0] -= 1
        text = f"Question {rng.randrange(10**6)}"
        try:
            timing = await asyncio.wait_for(chat.turn(text, history, session), TURN_TIMEOUT)
        except asyncio.TimeoutError:
            tally.stuck += 1
            continue
        tally.turns += 1
        if b"chat-notice-error" in timing.final:
            tally.notices += 1
        elif timing.ok:
            tally.replies += 1
        else:
            tally.lost += 1
            tally.errors.append(timing.error or timing.final[:200].decode(errors="replace"))
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": MARKER.decode()}]
        if len(history) >= 2 * TURNS_PER_CONVERSATION:
            history, session = [], await chat.open_page()


async def soak(chat: GradioChat, clients: int, turns: int, seconds: float, seed: int) -> Tally:
    tally, budget = Tally(), [turns]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(client(chat, tally, budget, deadline, random.Random(seed + i)) for i in range(clients)))
    return tally


async def warm_up(chat: GradioChat, clients: int) -> None:
    """One round at full concurrency, so the thread pools have grown before the baseline is taken."""
    sessions = [await chat.open_page() for _ in range(clients)]
    await asyncio.gather(*(chat.turn("warm up", [], session) for session in sessions))


def settle(pid: int, baseline: dict[str, float], seconds: float = 30.0) -> dict[str, float]:
    """The server's resources once idle again: polled until back at the baseline or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        now = resources(pid)
        back = now["threads"] <= baseline["threads"] and now["open files"] <= baseline["open files"]
        if back or time.monotonic() > deadline:
            return now
        time.sleep(0.5)  # polling another process's /proc: there is no event to wait on


def unhandled(log: str) -> int:
    """Tracebacks and 'unexpected failure' lines in the app's log: exceptions that escaped a handler."""
    return len(re.findall(r"^Traceback|unexpected failure while answering", log, re.M))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--seconds", type=float, default=900, help="stop starting turns after this long")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    fake_port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_api", "--port", str(fake_port), "--tokens", str(TOKENS), "--rate", "100",
         "--ttft", "0.05", "--chaos", str(args.failure_rate), "--seed", str(args.seed)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as folder:
        app = AppProcess(Path(folder) / "app.log", AIMLAPI_BASE_URL=f"http://{HOST}:{fake_port}/v1",
                         AIMLAPI_KEY="soak", AIMLAPI_READ_TIMEOUT="2", AIMLAPI_RETRY_BUDGET="1",
                         RATE_LIMIT_PER_SESSION="0", RATE_LIMIT_PER_ADDRESS="0")
        try:
            app.start()
            pid = app.process.pid
            chat = asyncio.run(GradioChat.discover(HOST, app.port))
            chat.marker = MARKER
            asyncio.run(warm_up(chat, args.clients))
            before = resources(pid)
            started = time.monotonic()
            tally = asyncio.run(soak(chat, args.clients, args.turns, args.seconds, args.seed))
            elapsed = time.monotonic() - started
            after = settle(pid, before)
            exceptions = unhandled(app.logs())
        finally:
            app.stop()
            fake.terminate()
            fake.wait()

    print(f"Soak: {args.clients} clients, {args.failure_rate:.0%} of upstream calls failing at random, "
          f"{elapsed:.0f} s")
    rows = [("turns completed", tally.turns), ("replies", tally.replies), ("notices shown", tally.notices),
            ("lost turns (neither)", tally.lost), ("stuck sessions", tally.stuck),
            ("unhandled exceptions", exceptions)]
    rows += [(f"{name} before → after", f"{before[name]} → {after[name]}") for name in before]
    for name, value in rows:
        print(f"| {name} | {value} |")
    for error in tally.errors[:5]:
        print("  lost turn:", error)
    leaked = after["threads"] > before["threads"] or after["open files"] > before["open files"]
    healthy = tally.turns >= args.turns and not (tally.lost or tally.stuck or exceptions or leaked)
    print("healthy" if healthy else "NOT healthy")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
