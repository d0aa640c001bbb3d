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
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import GradioChat  # noqa: E402
from bench.run import rss_mb  # noqa: E402
from chat_backend.off_loop import STORE_THREADS  # noqa: E402
from tests.app_process import AppProcess, start_fake_api  # noqa: E402

HOST = "127.0.0.1"
TOKENS = 20
MARKER = f"tok{TOKENS - 1}".encode()
TURN_TIMEOUT = 60.0  # a turn not finished by then counts as a stuck session
TURNS_PER_CONVERSATION = 6  # then the client opens a new page, as people start new chats
WORKER_IDLE_SECONDS = 11  # anyio retires worker threads idle for 10 s
CONCURRENCY = 128  # the app's default CHAT_CONCURRENCY, which also sizes its upstream pool
# Threads at rest may grow this much without a leak: anyio's workers vary by 2 with how the last call was scheduled,
# and the store's pool keeps each thread it started, up to STORE_THREADS (a warm-up need not reach them all).
THREAD_GROWTH = 2 + STORE_THREADS


@dataclass
class Tally:
    turns: int = 0
    replies: int = 0
    notices: int = 0
    lost: int = 0  # neither a reply nor a notice: what a person would see as nothing happening
    stuck: int = 0
    errors: list[str] = field(default_factory=list)


def resources(pid: int, upstream_port: int) -> dict[str, float]:
    """Threads, open files (apart from the kept-alive upstream connections, which the pool may keep up to
    CHAT_CONCURRENCY of), those upstream connections, and memory."""
    sockets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    inodes = {link[8:-1] for link in sockets if link.startswith("socket:[")}
    upstream = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes and int(fields[2].split(":")[1], 16) == upstream_port:
            upstream += 1
    return {
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "open files": len(sockets) - upstream,
        "upstream connections": upstream,
        "RSS MB": round(rss_mb(pid), 1),
    }


async def client(chat: GradioChat, tally: Tally, budget: list[int], deadline: float, rng: random.Random) -> None:
    """Chat turn after turn in one conversation, starting a new one now and then, until the work is done."""
    history: list[dict[str, str]] = []
    session = await chat.open_page()
    while budget[0] > 0 and time.monotonic() < deadline:
        budget[0] -= 1
        text = f"Question {rng.randrange(10**6)}"
        try:
            timing = await asyncio.wait_for(chat.turn(text, history, session), TURN_TIMEOUT)
        except TimeoutError:
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


async def idle_resources(chat: GradioChat, pid: int, upstream_port: int) -> dict[str, float]:
    """The server's resources at rest: after its worker threads' idle timeout has passed and one more turn
    has let the pool retire them (anyio prunes idle workers only when it is next used)."""
    await asyncio.sleep(WORKER_IDLE_SECONDS)  # a timeout to outlast, not an event to wait for
    await chat.turn("probe", [], await chat.open_page())
    return resources(pid, upstream_port)


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
    parser.add_argument("--report", type=Path, help="also write the report (Markdown) to this file")
    args = parser.parse_args()

    fake, fake_port = start_fake_api(tokens=TOKENS, rate=100, ttft=0.05, chaos=args.failure_rate, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        app = AppProcess(
            Path(folder) / "app.log",
            AIMLAPI_BASE_URL=f"http://{HOST}:{fake_port}/v1",
            AIMLAPI_KEY="soak",
            AIMLAPI_READ_TIMEOUT="2",
            AIMLAPI_RETRY_BUDGET="1",
            RATE_LIMIT_PER_SESSION="0",
            RATE_LIMIT_PER_ADDRESS="0",
        )
        try:
            app.start()
            pid = app.process.pid
            chat = asyncio.run(GradioChat.discover(HOST, app.port, MARKER))
            asyncio.run(warm_up(chat, args.clients))
            before = asyncio.run(idle_resources(chat, pid, fake_port))
            started = time.monotonic()
            tally = asyncio.run(soak(chat, args.clients, args.turns, args.seconds, args.seed))
            elapsed = time.monotonic() - started
            after = asyncio.run(idle_resources(chat, pid, fake_port))
            exceptions = unhandled(app.logs())
        finally:
            app.stop()
            fake.terminate()
            fake.wait()

    rows = [
        ("turns completed", tally.turns),
        ("replies", tally.replies),
        ("notices shown", tally.notices),
        ("lost turns (neither reply nor notice)", tally.lost),
        ("stuck sessions", tally.stuck),
        ("unhandled exceptions", exceptions),
    ]
    rows += [(f"{name} before → after", f"{before[name]} → {after[name]}") for name in before]
    leaked = (
        after["threads"] > before["threads"] + THREAD_GROWTH
        or after["open files"] > before["open files"]
        or after["upstream connections"] > CONCURRENCY
    )
    healthy = tally.turns >= args.turns and not (tally.lost or tally.stuck or exceptions or leaked)
    report = "\n".join(
        [
            f"# Soak: {tally.turns} turns from {args.clients} clients, "
            f"{args.failure_rate:.0%} of upstream calls failing",
            "",
            f"Command: `python bench/soak.py --turns {args.turns} --clients {args.clients} --failure-rate "
            f"{args.failure_rate:g} --seed {args.seed}` ({elapsed:.0f} s). Faults are drawn at random from: 500, 502 "
            "(HTML page), 503, 504, 429, dropped and reset streams, stalls, errors inside the stream, garbled "
            "streams and refused connections. 5xx and 429 are retried by the app, so fewer turns end in a notice "
            "than calls fail. Resources are measured at rest, before and after; threads may differ by up to "
            f"{THREAD_GROWTH} with the worker pools' idle state, and the upstream pool may keep up to {CONCURRENCY} "
            "connections.",
            "",
            "| measure | value |",
            "|---|---|",
            *[f"| {name} | {value} |" for name, value in rows],
            "",
            *[f"- lost turn: `{error}`" for error in tally.errors[:5]],
            "healthy" if healthy else "NOT healthy",
        ]
    )
    print(report)
    if args.report:
        args.report.write_text(report + "\n", encoding="utf-8")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
