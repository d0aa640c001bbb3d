"""chat_backend: conversation in, MiniMax reply out, over the AI/ML API. Plain Python; never imports gradio."""

from .catalogue import Catalogue, ModelInfo
from .client import ChatClient, build_body
from .config import Settings, load_settings, resolve_key
from .errors import ChatError, redact
from .messages import NOTICE_ID, fit_to_context, is_notice, to_api_messages
from .stream import ChatResult, ChatStream, Usage
from .visitor_settings import ChatSettings

__all__ = [
    "NOTICE_ID",
    "Catalogue",
    "ChatClient",
    "ChatError",
    "ChatResult",
    "ChatSettings",
    "ChatStream",
    "ModelInfo",
    "Settings",
    "Usage",
    "build_body",
    "fit_to_context",
    "is_notice",
    "load_settings",
    "redact",
    "resolve_key",
    "to_api_messages",
]
