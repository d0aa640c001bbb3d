"""`python -m tests.fake_api`: run the stand-in in the foreground, for manual use and benchmarks."""

from __future__ import annotations

import argparse
import random
import signal
import threading
from typing import Any

from tests.fake_api.scripting import SHAPES, Reply
from tests.fake_api.server import FakeAPI


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_api", description="Run the AI/ML API stand-in in the foreground."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--tokens", type=int, help="reply with this many tokens, one per chunk")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--deprecated", action="append", default=[], help="model id to answer with 404")
    parser.add_argument("--chaos", type=float, default=0.0, help="share of chat requests given a random fault")
    parser.add_argument("--seed", type=int, default=0, help="seed for --chaos")
    parser.add_argument("--shape", choices=SHAPES, default="keep-alive", help="how every answer is framed")
    args = parser.parse_args(argv)
    api = FakeAPI(args.host, args.port, deprecated_models=args.deprecated)
    api.chaos, api._rng = args.chaos, random.Random(args.seed)
    delay = 1.0 / args.rate if args.rate > 0 else 0.0
    if args.tokens is not None:
        chunks = [f"{' ' if i else ''}tok{i}" for i in range(args.tokens)]
        api.default = Reply(text="".join(chunks), chunks=chunks, ttft=args.ttft, delay=delay, shape=args.shape)
    else:
        api.default = Reply(ttft=args.ttft, delay=delay, shape=args.shape)
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout`/`kill` exit as cleanly as Ctrl-C
    api.start()
    print(api.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.close()


if __name__ == "__main__":
    main()
