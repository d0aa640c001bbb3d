"""A local stand-in for the AI/ML API (contract: shared/api/NOTES.md).

Serves POST /v1/chat/completions (JSON or SSE stream) and GET /v1/models on 127.0.0.1, validates each
chat body against the strict schemas in tests/schemas/, records every request, and plays scripted
`Reply` objects so tests can provoke slow, broken or failing responses.
Run `python -m tests.fake_api --help` for manual use and benchmarks.
"""

from tests.fake_api.contract import CHAT_MODELS, CHAT_PATH, MESSAGES, MODELS_PATH, OTHER_MODELS, SCHEMA_DIR
from tests.fake_api.scripting import CHAOS, SHAPES, Headers, Recorded, Reply
from tests.fake_api.server import FakeAPI, _Handler, _Server

__all__ = [
    "CHAOS",
    "CHAT_MODELS",
    "CHAT_PATH",
    "MESSAGES",
    "MODELS_PATH",
    "OTHER_MODELS",
    "SCHEMA_DIR",
    "FakeAPI",
    "Headers",
    "Recorded",
    "Reply",
    "SHAPES",
    "_Handler",
    "_Server",
]
