"""compare: the same loads against two revisions of the app in one run, interleaved, so that a regression shows
up against the change that caused it, whatever else the shared machine is doing.

Each revision is exported (`git archive`) into a temporary folder and served from there as `python app.py`; both
(and the minimal peer, with `--peer`) run side by side against one stand-in API, idle while another is measured.
Every repeat runs every load once per side, in alternating order (A, B, then B, A), each load right after a
direct client under the same load, so that each ratio to direct is taken within a minute of the other's.
Run from the repository root:

    python bench/run.py --compare main HEAD
    python bench/run.py --compare main .     # a folder as it is: "." is this checkout, uncommitted edits included
    python bench/run.py --compare 662f2bb main --repeats 5 --bursts 64,128 --one-at-a-time 10 --open-rate 10

Prints a Markdown table (each figure the median over repeats, the range beside it) and writes every repeat's
figures to compare.json in --out.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import openloop
from bench.loadgen import GradioChat, direct_turn
from bench.run import HOST, MODEL, QUESTION, Row, direct_turns, gradio_turns, measure, median, p95
from tests.app_process import ROOT, AppProcess, start_fake_api

SETTLE_SECONDS = 2.0  # after each load, for the last replies' clean-up to finish before the next one is timed


@dataclass(frozen=True)
class Load:
    """A burst (`chats` at once), `chats` one after another, or new chats at `rate` a second for `seconds`."""

    kind: str
    chats: int = 0
    rate: float = 0.0
    seconds: float = 0.0

    @property
    def label(self) -> str:
        if self.kind == "burst":
            return f"burst of {self.chats}"
        if self.kind == "sequence":
            return f"{self.chats} one at a time"
        return f"{self.rate:g} new chats/s for {self.seconds:g} s"


@dataclass
class Side:
    """One server under test: a revision's app, or the minimal peer."""

    name: str
    label: str
    server: AppProcess
    chat: GradioChat | None = None
    restarts: list[str] = field(default_factory=list)


@dataclass
class Sample:
    """One load on one side in one repeat, with the direct client's figures from right before it."""

    load: str
    side: str
    repeat: int
    figures: dict[str, float | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


FIGURES = {  # name: (heading, format)
    "ttft_median_x": ("TTFT median ×direct", "{:.2f}×"),
    "ttft_p95_x": ("TTFT p95 ×direct", "{:.2f}×"),
    "total_median_x": ("total median ×direct", "{:.2f}×"),
    "cpu_ms_per_1k_tokens": ("CPU ms / 1,000 tokens", "{:.0f}"),
    "cpu_ms_per_message": ("CPU ms / message", "{:.0f}"),
    "failed": ("failed", "{:.0f}"),
}


def export(revision: str, folder: Path) -> tuple[Path, str]:
    """`revision`'s files in `folder` (nothing of this checkout's git state changes), and a label naming the
    commit; a folder (".": this checkout) is served where it is, as it is, for edits not yet committed."""
    if Path(revision).is_dir():
        return Path(revision).resolve(), f"{revision} (a folder, as it is)"
    commit = _git("rev-parse", "--short", f"{revision}^{{commit}}").strip()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder, f"{revision} ({commit})" if revision != commit else commit


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def figures(
    ttft: list[float],
    total: list[float],
    failed: int,
    cpu: float,
    tokens: int,
    direct_ttft: list[float],
    direct_total: list[float],
) -> dict[str, float | None]:
    def ratio(mine: float | None, base: float | None) -> float | None:
        return mine / base if mine is not None and base else None

    messages = len(ttft) + failed
    return {
        "ttft_median_x": ratio(median(ttft), median(direct_ttft)),
        "ttft_p95_x": ratio(p95(ttft), p95(direct_ttft)),
        "total_median_x": ratio(median(total), median(direct_total)),
        "cpu_ms_per_1k_tokens": cpu * 1e6 / tokens if tokens else None,
        "cpu_ms_per_message": cpu * 1e3 / messages if messages else None,
        "failed": float(failed),
    }


async def measure_load(
    load: Load, sides: list[Side], fake_port: int, args: argparse.Namespace, repeat: int
) -> list[Sample]:
    """Direct first, then each side in the given order, under the same load. A side whose server has died is
    restarted first (and the report says so); a side that fails to answer at all gets a sample with the error."""
    question = [{"role": "user", "content": QUESTION}]
    chats, rounds = (load.chats, 1) if load.kind == "burst" else (1, load.chats)
    arrivals = openloop.Load(rate=load.rate, seconds=load.seconds)
    if load.kind == "open":
        direct = await openloop.measure("direct", arrivals, lambda: direct_turn(HOST, fake_port, question, MODEL), None)
        base_ttft, base_total = direct.ttft, direct.total
    else:
        base = await measure(Row("direct", chats), rounds, None, direct_turns(fake_port, question), args.tokens)
        base_ttft, base_total = base.ttft, base.total
    await asyncio.sleep(SETTLE_SECONDS)
    samples = []
    for side in sides:
        sample = Sample(load.label, side.name, repeat)
        try:
            await _running(side, f"before {load.label} in repeat {repeat + 1}", args.tokens)
            assert side.chat is not None and side.server.process is not None
            pid = side.server.process.pid
            if load.kind == "open":
                result = await openloop.measure(side.name, arrivals, openloop.new_chat(side.chat), pid)
                ttft, total, failed, cpu, errors = (
                    result.ttft,
                    result.total,
                    result.failed,
                    result.cpu_seconds,
                    result.errors,
                )
            else:
                row = await measure(Row(side.name, chats), rounds, pid, gradio_turns(side.chat, []), args.tokens)
                ttft, total, failed, cpu, errors = row.ttft, row.total, row.failed, row.cpu_seconds, row.errors
            tokens = len(ttft) * args.tokens
            sample.figures = figures(ttft, total, failed, cpu, tokens, base_ttft, base_total)
            sample.errors = errors
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
            sample.errors = [f"{side.name}: {exc!r}"[:300]]
        samples.append(sample)
        await asyncio.sleep(SETTLE_SECONDS)
    return samples


async def _running(side: Side, when: str, tokens: int) -> None:
    """Restart a side's server if it has exited (another engineer's clean-up, a crash), noting it."""
    process = side.server.process
    if process is not None and process.poll() is None:
        return
    note = f"{side.name}'s server had exited (code {process.returncode if process else None}) {when}; restarted"
    print(note, flush=True)
    side.restarts.append(note)
    side.server.start()
    side.chat = await GradioChat.discover(HOST, side.server.port, f"tok{tokens - 1}".encode())


async def run_repeats(args: argparse.Namespace, sides: list[Side], loads: list[Load], fake_port: int) -> list[Sample]:
    marker = f"tok{args.tokens - 1}".encode()
    for side in sides:
        side.chat = await GradioChat.discover(HOST, side.server.port, marker)
    samples: list[Sample] = []
    revisions, peers = [s for s in sides if s.name != "peer"], [s for s in sides if s.name == "peer"]
    for repeat in range(args.repeats):
        order = revisions if repeat % 2 == 0 else revisions[::-1]
        for load in loads:
            here = order + (peers if load.kind != "open" else [])
            print(f"repeat {repeat + 1}/{args.repeats}: {load.label}: {', '.join(s.name for s in here)}", flush=True)
            samples += await measure_load(load, here, fake_port, args, repeat)
            raw = {"sides": {s.name: s.label for s in sides}, "samples": [s.__dict__ for s in samples]}
            (args.out / "compare.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")  # so far
    return samples


def render(samples: list[Sample], sides: list[Side], loads: list[Load], args: argparse.Namespace, took: float) -> str:
    """One line per load and figure: each side's median over repeats with its range, and B ÷ A."""
    names = [side.name for side in sides]
    lines = [
        f"Compared in one run ({took / 60:.0f} min, {args.repeats} repeats, interleaved): "
        + "; ".join(f"**{side.name}** = {side.label}" for side in sides)
        + f". Stand-in API: {args.ttft * 1000:.0f} ms to first token, then {args.tokens} tokens at {args.rate:g}/s. "
        "Each cell: median over repeats (lowest–highest).",
        "",
        f"| load | figure | {' | '.join(names)} | B ÷ A |",
        "|---|---|" + "---|" * (len(names) + 1),
    ]
    for load in loads:
        for key, (heading, form) in FIGURES.items():
            cells, middles = [], {}
            for name in names:
                values = [
                    v
                    for s in samples
                    if s.load == load.label and s.side == name and (v := s.figures.get(key)) is not None
                ]
                if not values:
                    cells.append("—")
                    continue
                middles[name] = statistics.median(values)
                spread = f" ({form.format(min(values))}–{form.format(max(values))})" if len(values) > 1 else ""
                cells.append(form.format(middles[name]) + spread)
            if all(cell == "—" for cell in cells):
                continue
            a, b = middles.get("A"), middles.get("B")
            change = f"{b / a:.2f}" if a and b is not None and key != "failed" else "—"
            lines.append(f"| {load.label} | {heading} | {' | '.join(cells)} | {change} |")
    errors = sorted({error[:160] for s in samples for error in s.errors})
    if errors:
        lines += ["", "Errors seen:", *[f"- `{error}`" for error in errors[:10]]]
    restarts = [note for side in sides for note in side.restarts]
    if restarts:
        lines += ["", "Restarts:", *[f"- {note}" for note in restarts]]
    return "\n".join(lines) + "\n"


def loads_from(args: argparse.Namespace) -> list[Load]:
    loads = [Load("burst", chats=int(n)) for n in args.bursts.split(",") if n]
    if args.one_at_a_time:
        loads.append(Load("sequence", chats=args.one_at_a_time))
    if args.open_rate:
        loads.append(Load("open", rate=args.open_rate, seconds=args.open_seconds))
    return loads


def main(args: argparse.Namespace) -> None:
    loads = loads_from(args)
    logs = args.out / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    fake, fake_port = start_fake_api(ttft=args.ttft, tokens=args.tokens, rate=args.rate)
    base_url = f"http://{HOST}:{fake_port}/v1"
    unlimited = {  # all load comes from one address
        "RATE_LIMIT_PER_SESSION": "0",
        "RATE_LIMIT_PER_ADDRESS": "0",
        "MAX_UPSTREAM_PER_ADDRESS": "100000",
    }
    sides: list[Side] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # so that the servers below are stopped
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch:
        try:
            for name, revision in zip(("A", "B"), args.compare, strict=True):
                folder, label = export(revision, Path(scratch) / name)
                server = AppProcess(
                    logs / f"compare-{name}.log", AIMLAPI_BASE_URL=base_url, AIMLAPI_KEY="bench", **unlimited
                )
                server.cwd, server.env["DATA_DIR"] = folder, str(Path(scratch) / f"{name}-data")
                sides.append(Side(name, label, server))
            if args.peer:
                peer = AppProcess(logs / "compare-peer.log")
                peer.command = [sys.executable, "bench/minimal_peer.py", base_url, str(peer.port)]
                sides.append(Side("peer", "a minimal streaming gr.ChatInterface (bench/minimal_peer.py)", peer))
            for side in sides:
                side.server.start()
            started = time.monotonic()
            samples = asyncio.run(run_repeats(args, sides, loads, fake_port))
            took = time.monotonic() - started
        finally:
            for side in sides:
                side.server.stop()
            fake.terminate()
            fake.wait()
    print(render(samples, sides, loads, args, took))
