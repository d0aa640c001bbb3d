"""bench: time to first token, total time, server CPU and memory for the same reply three ways.

- direct: a client streaming straight from the stand-in API (the floor);
- app: clients chatting through `python app.py` the way the browser does (Gradio's queue protocol);
- peer: `gr.load_chat` on the same stand-in API, with its defaults.

Each runs in its own process; the load comes from one asyncio loop (bench/loadgen.py). Results go to
docs/bench.md (table and targets) and docs/bench.png. Run from the repository root:

    python bench/run.py            # the full run, a few minutes
    python bench/run.py --smoke    # 2 chats, a short reply: what CI runs
    python bench/run.py --open-loop  # chats arriving at fixed rates: 1 process vs replicas behind HAProxy
    python bench/run.py --compare main HEAD  # two revisions in one run, interleaved (bench/compare.py)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import openloop  # noqa: E402
from bench.loadgen import GradioChat, Timing, direct_turn  # noqa: E402
from bench.plot import plot  # noqa: E402
from tests.app_process import AppProcess, start_fake_api  # noqa: E402

HOST = "127.0.0.1"
MODEL = "abab6.5s-chat"
QUESTION = "Tell me something."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
OPEN_LOOP_HEADING = "## Open loop"
PER_MESSAGE_HEADING = "## Per message"  # written by hand from `--compare` runs; kept after the open loop


@dataclass
class Row:
    """Everything measured for one way at one number of simultaneous chats."""

    mode: str
    chats: int
    label: str = ""
    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    failed: int = 0
    cpu_seconds: float = 0.0
    tokens: int = 0
    rss_peak_mb: float = 0.0
    rss_idle_mb: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def cpu_ms_per_1k_tokens(self) -> float | None:
        return self.cpu_seconds * 1e6 / self.tokens if self.tokens else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def long_history(turns: int, words: int) -> list[dict[str, str]]:
    """`turns` earlier exchanges of about `words` words each, as the browser's chatbot holds them."""
    history = []
    for turn in range(turns):
        text = " ".join(f"word{turn}x{i}" for i in range(words))
        history += [
            {"role": "user", "content": f"Question {turn}: {text}"},
            {"role": "assistant", "content": f"Answer {turn}: {text}"},
        ]
    return history


Turn = Callable[[], Awaitable[Timing]]


async def measure(
    row: Row, rounds: int, pid: int | None, prepare: Callable[[int], Awaitable[list[Turn]]], tokens_per_reply: int
) -> Row:
    """Run `rounds` rounds of `row.chats` simultaneous turns; sample the server's CPU and RSS meanwhile.
    `prepare` opens the pages (untimed, as a visitor's page load comes before typing)."""
    if pid:
        row.rss_idle_mb = rss_mb(pid)
    for _ in range(rounds):
        turns = await prepare(row.chats)
        before = cpu_seconds(pid) if pid else 0.0
        sampling = asyncio.create_task(_sample_rss(row, pid)) if pid else None
        timings = await asyncio.gather(*(turn() for turn in turns))
        if sampling:
            sampling.cancel()
            row.cpu_seconds += cpu_seconds(pid) - before
        for timing in timings:
            if timing.ok:
                row.ttft.append(timing.ttft)
                row.total.append(timing.total)
                row.tokens += tokens_per_reply
            else:
                row.failed += 1
                row.errors.append(timing.error)
    return row


def direct_turns(port: int, messages: list[dict[str, str]]) -> Callable[[int], Awaitable[list[Turn]]]:
    async def prepare(chats: int) -> list[Turn]:
        return [lambda: direct_turn(HOST, port, messages, MODEL)] * chats

    return prepare


def gradio_turns(chat: GradioChat, history: list[dict[str, str]]) -> Callable[[int], Awaitable[list[Turn]]]:
    async def prepare(chats: int) -> list[Turn]:
        sessions = [await chat.open_page(history) for _ in range(chats)]
        return [lambda session=session: chat.turn(QUESTION, history, session) for session in sessions]

    return prepare


async def _sample_rss(row: Row, pid: int) -> None:
    while True:
        row.rss_peak_mb = max(row.rss_peak_mb, rss_mb(pid))
        await asyncio.sleep(0.1)


def rounds_for(chats: int, most: int) -> int:
    return max(1, min(most, 24 // chats))


async def run_all(
    args: argparse.Namespace, fake_port: int, app: AppProcess, peer: AppProcess | None, floor: AppProcess | None
) -> list[Row]:
    rows: list[Row] = []
    marker = f"tok{args.tokens - 1}".encode()
    app_chat = await GradioChat.discover(HOST, app.port, marker)
    peer_chat = await GradioChat.discover(HOST, peer.port, marker) if peer else None
    question = [{"role": "user", "content": QUESTION}]
    for chats in args.levels:
        print(f"{chats} simultaneous chats", flush=True)
        rounds = rounds_for(chats, args.rounds)
        rows.append(await measure(Row("direct", chats), rounds, None, direct_turns(fake_port, question), args.tokens))
        rows.append(await measure(Row("app", chats), rounds, app.process.pid, gradio_turns(app_chat, []), args.tokens))
        if peer_chat and chats <= args.peer_max:
            rows.append(
                await measure(
                    Row("peer", chats),
                    1 if chats > 1 else rounds,
                    peer.process.pid,
                    gradio_turns(peer_chat, []),
                    args.tokens,
                )
            )
    if args.long_turns:
        chats, history = args.long_chats, long_history(args.long_turns, args.long_words)
        print(f"{chats} chats with {len(history)} earlier messages", flush=True)
        rows.append(
            await measure(
                Row("direct", chats, "long"), 1, None, direct_turns(fake_port, [*history, *question]), args.tokens
            )
        )
        rows.append(
            await measure(Row("app", chats, "long"), 1, app.process.pid, gradio_turns(app_chat, history), args.tokens)
        )
    if floor:
        chats = args.floor_chats
        print(f"{chats} chats, first and last update only", flush=True)
        floor_chat = await GradioChat.discover(HOST, floor.port, marker)
        rows.append(
            await measure(Row("direct", chats, "floor"), 1, None, direct_turns(fake_port, question), args.tokens)
        )
        rows.append(
            await measure(Row("app", chats, "floor"), 1, floor.process.pid, gradio_turns(floor_chat, []), args.tokens)
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="1,8,32,64,128", help="simultaneous chats, comma-separated")
    parser.add_argument("--tokens", type=int, default=100, help="tokens per reply, one per chunk")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--ttft", type=float, default=0.3, help="stand-in's time to first token, seconds")
    parser.add_argument("--rounds", type=int, default=10, help="most rounds at one level (fewer for many chats)")
    parser.add_argument("--peer-max", type=int, default=32, help="most chats for the peer (its queue is serial)")
    parser.add_argument("--long-chats", type=int, default=64)
    parser.add_argument("--long-turns", type=int, default=40, help="earlier exchanges in the long case (0: skip)")
    parser.add_argument("--long-words", type=int, default=500)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument(
        "--floor-chats",
        type=int,
        default=64,
        help="chats for the floor case: the app sending only each reply's first and last update (0: skip)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--smoke", action="store_true", help="2 chats, a short reply: a quick check that it all runs")
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="Poisson arrivals and bursts, 1 process vs replicas behind HAProxy (bench/openloop.py); "
        "its section replaces the one in docs/bench.md",
    )
    parser.add_argument("--rates", default="5,10,15,20", help="open loop: new chats a second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="open loop: seconds at each rate")
    parser.add_argument("--bursts", default="64,128", help="open loop: chats arriving at once, comma-separated")
    parser.add_argument("--replicas", default="1,2", help="open loop: replica counts behind HAProxy")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("REV_A", "REV_B"),
        help='two git revisions or folders ("." for this checkout as it is), measured in one run, interleaved '
        "(bench/compare.py); uses --bursts, --one-at-a-time, --open-rate, --open-seconds, --repeats, --peer",
    )
    parser.add_argument("--repeats", type=int, default=3, help="compare: times every load runs on each side")
    parser.add_argument(
        "--one-at-a-time", type=int, default=10, help="compare: messages sent one after another (0: skip)"
    )
    parser.add_argument("--open-rate", type=float, default=10.0, help="compare: new chats a second (0: skip)")
    parser.add_argument("--open-seconds", type=float, default=20.0, help="compare: seconds of new chats")
    parser.add_argument("--peer", action="store_true", help="compare: also the minimal peer (bench/minimal_peer.py)")
    args = parser.parse_args()
    if args.compare:
        from bench import compare  # it imports this module's measuring helpers

        compare.main(args)
        return
    if args.open_loop:
        run_open_loop(args)
        return
    if args.smoke:
        args.levels, args.tokens, args.rate, args.ttft, args.rounds = "2", 10, 100.0, 0.05, 1
        args.long_chats, args.long_turns, args.long_words, args.floor_chats = 2, 2, 20, 2
    args.levels = [int(level) for level in args.levels.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    fake, fake_port = start_fake_api(ttft=args.ttft, tokens=args.tokens, rate=args.rate)
    base_url = f"http://{HOST}:{fake_port}/v1"
    logs = args.out / "bench-logs"
    logs.mkdir(exist_ok=True)
    unlimited = {  # all load comes from one address
        "RATE_LIMIT_PER_SESSION": "0",
        "RATE_LIMIT_PER_ADDRESS": "0",
        "MAX_UPSTREAM_PER_ADDRESS": "100000",
    }
    app = AppProcess(logs / "app.log", AIMLAPI_BASE_URL=base_url, AIMLAPI_KEY="bench", **unlimited)
    # The same app sending only the first and the last update of each reply: the floor of Gradio's own costs.
    floor = (
        AppProcess(
            logs / "floor.log",
            AIMLAPI_BASE_URL=base_url,
            AIMLAPI_KEY="bench",
            STREAM_UPDATE_BUDGET="0.001",
            **unlimited,
        )
        if args.floor_chats
        else None
    )
    peer = None if args.no_peer else AppProcess(logs / "peer.log", AIMLAPI_BASE_URL=base_url)
    if peer:
        peer.command = [sys.executable, "bench/peer_app.py", base_url, str(peer.port)]
    servers = [server for server in (app, floor, peer) if server]
    try:
        for server in servers:
            server.start()
        started = time.monotonic()
        rows = asyncio.run(run_all(args, fake_port, app, peer, floor))
        elapsed = time.monotonic() - started
    finally:
        for server in servers:
            server.stop()
        fake.terminate()
        fake.wait()
    (args.out / "bench.json").write_text(json.dumps([asdict(row) for row in rows], indent=1), encoding="utf-8")
    report = render(rows, args, elapsed)
    old = args.out / "bench.md"
    kept = old.read_text(encoding="utf-8").partition(OPEN_LOOP_HEADING) if old.exists() else ("", "", "")
    old.write_text(report + (f"\n{kept[1]}{kept[2]}" if kept[1] else ""), encoding="utf-8")  # the open loop's own
    plot(rows, args.out / "bench.png")
    print(report)


def run_open_loop(args: argparse.Namespace) -> None:
    """Measure the open loop and put its section into bench.md, replacing an earlier one."""
    args.rates = [float(rate) for rate in args.rates.split(",")]
    args.bursts = [int(n) for n in args.bursts.split(",") if n]
    args.replicas = [int(n) for n in args.replicas.split(",") if n]
    args.out.mkdir(parents=True, exist_ok=True)
    section = openloop.main(args)
    report = args.out / "bench.md"
    text = report.read_text(encoding="utf-8") if report.exists() else ""
    before, after = text.split(OPEN_LOOP_HEADING)[0], text.partition(PER_MESSAGE_HEADING)
    kept = f"\n{after[1]}{after[2]}" if after[1] else ""  # the hand-written per-message section stays
    report.write_text(before.rstrip("\n") + "\n\n" + section + kept, encoding="utf-8")
    print(section)


def render(rows: list[Row], args: argparse.Namespace, elapsed: float) -> str:
    """The Markdown report: conditions, the table, and each target with its measurement."""
    direct = {(r.chats, r.label): r for r in rows if r.mode == "direct"}

    def ratio(row: Row, pick: Callable[[list[float]], float | None], values: str) -> str:
        base = pick(getattr(direct[(row.chats, row.label)], values))
        mine = pick(getattr(row, values))
        return f"{mine / base:.2f}×" if base and mine is not None else "—"

    def seconds(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "—"

    lines = [
        "# Benchmark: time to first token, total time, CPU and memory",
        "",
        f"Stand-in API: {args.ttft * 1000:.0f} ms to first token, then {args.tokens} tokens at {args.rate:g} tokens/s, "
        f"one token per chunk. Machine: {os.cpu_count()} cores. Command: `python bench/run.py"
        f"{' --smoke' if args.smoke else ''}` ({elapsed:.0f} s). Ratios are to **direct** at the same number of "
        "chats, measured in the same run. CPU is the serving process's user+system time per 1,000 streamed tokens.",
        "",
        "| way | chats | case | TTFT median s | ×direct | TTFT p95 s | ×direct | total median s | ×direct | "
        "total p95 s | ×direct | CPU ms / 1k tokens | RSS idle → peak MB | failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cpu = (
            f"{row.cpu_ms_per_1k_tokens:.0f}" if row.cpu_ms_per_1k_tokens is not None and row.mode != "direct" else "—"
        )
        rss = f"{row.rss_idle_mb:.0f} → {row.rss_peak_mb:.0f}" if row.mode != "direct" else "—"
        lines.append(
            f"| {row.mode} | {row.chats} | {row.label or 'short'} | {seconds(median(row.ttft))} | "
            f"{ratio(row, median, 'ttft')} | {seconds(p95(row.ttft))} | {ratio(row, p95, 'ttft')} | "
            f"{seconds(median(row.total))} | {ratio(row, median, 'total')} | {seconds(p95(row.total))} | "
            f"{ratio(row, p95, 'total')} | {cpu} | {rss} | {row.failed} |"
        )
    errors = sorted({error for row in rows for error in row.errors})
    if errors:
        lines += ["", "Errors seen:", *[f"- `{error}`" for error in errors[:10]]]
    lines += ["", *targets(rows, direct)]
    return "\n".join(lines) + "\n"


def targets(rows: list[Row], direct: dict[tuple[int, str], Row]) -> list[str]:
    """Each target of the issue, with the figure that meets or misses it."""
    app = {(r.chats, r.label): r for r in rows if r.mode == "app"}
    peer = {r.chats: r for r in rows if r.mode == "peer"}
    checks: list[tuple[str, float | None, float, str]] = []

    def ratio_of(chats: int, pick: Callable[[list[float]], float | None], values: str) -> float | None:
        if (chats, "") not in app:
            return None
        mine, base = pick(getattr(app[(chats, "")], values)), pick(getattr(direct[(chats, "")], values))
        return mine / base if mine is not None and base else None

    if (1, "") in app:
        gap = median(app[(1, "")].ttft) - median(direct[(1, "")].ttft)
        checks.append(("1 chat: median TTFT within 30 ms of direct", gap * 1000, 30, "ms"))
    for chats, median_limit, p95_limit, total_limit in ((64, 1.25, 1.5, 1.1), (128, 1.5, 2.0, 1.2)):
        checks.append(
            (f"{chats} chats: median TTFT ≤ {median_limit}× direct", ratio_of(chats, median, "ttft"), median_limit, "×")
        )
        checks.append((f"{chats} chats: p95 TTFT ≤ {p95_limit}× direct", ratio_of(chats, p95, "ttft"), p95_limit, "×"))
        checks.append(
            (
                f"{chats} chats: median total time ≤ {total_limit}× direct",
                ratio_of(chats, median, "total"),
                total_limit,
                "×",
            )
        )
    if (64, "") in app:
        cpu64 = app[(64, "")].cpu_ms_per_1k_tokens
        checks.append(("64 chats: CPU per 1,000 tokens ≤ 150 ms", cpu64, 150, "ms"))
        long_cpu = app[(64, "long")].cpu_ms_per_1k_tokens if (64, "long") in app else None
        if long_cpu and cpu64:
            checks.append(("64 long conversations: CPU within 1.5× of short", long_cpu / cpu64, 1.5, "×"))
    levels = sorted(chats for chats, label in app if not label)
    if len(levels) >= 2:
        low, high = app[(levels[0], "")], app[(levels[-1], "")]
        growth = (high.rss_peak_mb - low.rss_peak_mb) / (levels[-1] - levels[0])
        checks.append((f"RSS growth per extra chat ({levels[0]} → {levels[-1]} chats) < 1 MB", growth, 1.0, "MB"))
    lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for name, value, limit, unit in checks:
        shown = "not measured" if value is None else (f"{value:.2f}{unit}" if unit == "×" else f"{value:.1f} {unit}")
        met = "—" if value is None else ("yes" if value <= limit else "**no**")
        lines.append(f"| {name} | {shown} | {met} |")
    floor = next((r for r in rows if r.mode == "app" and r.label == "floor" and r.tokens), None)
    if floor:
        base = direct[(floor.chats, "floor")]
        lines += [
            "",
            f"Floor ({floor.chats} chats, the app sending only the first and the last update of each reply): "
            f"CPU {floor.cpu_ms_per_1k_tokens:.0f} ms per 1,000 tokens, median TTFT "
            f"{median(floor.ttft) / median(base.ttft):.2f}× direct, median total "
            f"{median(floor.total) / median(base.total):.2f}× direct. No pacing of updates can go below "
            "this: it is what Gradio's ChatInterface spends per message (its submit chain of quick and "
            "queued events) before any streaming update.",
        ]
    if peer and (64, "") in app and app[(64, "")].cpu_ms_per_1k_tokens:
        slowest = max(peer.values(), key=lambda r: r.chats)
        lines += [
            "",
            f"Peer CPU per 1,000 tokens ({slowest.chats} chats): {slowest.cpu_ms_per_1k_tokens:.0f} ms, "
            f"{slowest.cpu_ms_per_1k_tokens / app[(64, '')].cpu_ms_per_1k_tokens:.1f}× this app's at 64 chats.",
        ]
    return lines


if __name__ == "__main__":
    main()
