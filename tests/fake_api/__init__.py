"""A local stand-in for the AI/ML API (contract: shared/api/NOTES.md).

Serves POST /v1/chat/completions (JSON or SSE stream) and GET /v1/models on 127.0.0.1, validates each
chat body against the strict schemas in tests/schemas/, records every request, and plays scripted
`Reply` objects so tests can provoke slow, broken or failing responses, and replies that think first in each
shape the M-series and gateways use (`Reply.thinking`, `Reply.thinking_shape`).
Run `python -m tests.fake_api --help` for manual use and benchmarks.
"""

from tests.fake_api.contract import CHAT_MODELS, CHAT_PATH, MESSAGES, MODELS_PATH, OTHER_MODELS, SCHEMA_DIR
from tests.fake_api.scripting import CHAOS, SHAPES, THINKING_SHAPES, Headers, Recorded, Reply
from tests.fake_api.server import FakeAPI, _Handler, _Server

__all__ = [
    "CHAOS",
    "CHAT_MODELS",
    "CHAT_PATH",
    "MESSAGES",
    "MODELS_PATH",
    "OTHER_MODELS",
    "SCHEMA_DIR",
    "THINKING_SHAPES",
    "FakeAPI",
    "Headers",
    "Recorded",
    "Reply",
    "SHAPES",
    "_Handler",
    "_Server",
]
