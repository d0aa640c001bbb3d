"""The vendor's side of the contract (shared/api/NOTES.md): paths, error messages, the model catalogue,
the request schemas and the usage and cost blocks."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
CHAT_PATH, MODELS_PATH = "/v1/chat/completions", "/v1/models"
CREDITS_PER_TOKEN, USD_PER_CREDIT = 2, 0.0000005  # illustrative pricing for the cost fields
MESSAGES = {  # documented error messages (NOTES.md table)
    400: "Body validation error!",
    401: "This request requires a valid API key. You can create a new API key on the Billing page: "
    "https://aimlapi.com/app/keys",
    403: "You've run out of credits. Please top up your balance or update your payment method to "
    "continue: https://aimlapi.com/app/billing/",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}
# id, aliases, name, contextLength from NOTES.md (aliases are made up; outputMax, set below, is illustrative)
CHAT_MODELS = [
    ("abab6.5s-chat", [], "abab6.5s", 245_000),
    ("MiniMax-Text-01", ["minimax/text-01"], "MiniMax-Text-01", 1_000_000),
    ("minimax/m1", [], "MiniMax M1", 1_000_000),
    ("minimax/m2", [], "MiniMax M2", 200_000),
    ("minimax/m2-her", [], "MiniMax M2 Her", 200_000),
    ("minimax/m2-1", [], "MiniMax M2.1", 204_800),
    ("minimax/m2-1-highspeed", [], "MiniMax M2.1 Highspeed", 204_800),
    ("minimax/m2-5-20260218", [], "MiniMax M2.5", 204_800),
    ("minimax/m2-5-highspeed-20260218", [], "MiniMax M2.5 Highspeed", 204_800),
    ("minimax/m2-7-20260402", [], "MiniMax M2.7", 204_800),
    ("minimax/m2-7-highspeed", [], "MiniMax M2.7 Highspeed", 204_800),
    ("minimax/minimax-m3", [], "MiniMax M3", 1_000_000),
]
OTHER_MODELS = [
    {
        "id": "flux/schnell",
        "aliases": [],
        "type": "openai/images",
        "info": {"name": "FLUX.1 [schnell]", "developer": "Black Forest Labs"},
        "tags": ["playground:image"],
    }
]


@functools.cache
def _validator(model: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"chat_request.{model}.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _explain(err: jsonschema.ValidationError) -> list[str]:
    """Flatten an error; for anyOf/oneOf report the branch the instance was evidently meant for."""
    if not err.context:
        return [f"{'/'.join(map(str, err.absolute_path)) or '(body)'}: {err.message}"]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in err.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)

    def off_target(errs: list[jsonschema.ValidationError]) -> bool:  # wrong type or wrong role/type tag
        return any(
            (e.validator == "type" and not e.relative_path)
            or (e.validator in ("enum", "const") and list(e.relative_path)[-1:] in (["role"], ["type"]))
            for e in errs
        )

    candidates = [errs for errs in branches.values() if not off_target(errs)] or list(branches.values())
    return [line for sub in min(candidates, key=len) for line in _explain(sub)]


def _usage(body: dict, completion: int, reasoning: int = 0) -> tuple[dict, dict]:
    """Rough usage (whitespace-separated words; `reasoning` of the completion's were thinking, as
    `completion_tokens_details` says) and the vendor's meta.usage cost block."""
    prompt = 0
    for message in body.get("messages", []):
        content = message.get("content")
        parts = [content] if isinstance(content, str) else [p.get("text") for p in content or [] if isinstance(p, dict)]
        prompt += sum(len(p.split()) for p in parts if isinstance(p, str))
    total = prompt + completion
    credits = total * CREDITS_PER_TOKEN
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage, {"usage": {"credits_used": credits, "usd_spent": round(credits * USD_PER_CREDIT, 8)}}
