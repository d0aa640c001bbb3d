"""i18n: every text the app itself shows, in English and Simplified Chinese; one catalogue per language.

Keys starting `ui_` are the page's component text (labels, hints, placeholders); app.py hands
them to `gr.I18n`, so the browser picks the language. The rest are notices, the facts line and export
headings, rendered on the server by `t` in the language of the request's Accept-Language. The model never
receives any of this text: notices are never sent back, and examples are the visitor's own message.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Any

DEFAULT = "en"

EN: dict[str, str] = {
    # The page (gr.I18n). No {placeholders} here: the browser shows these as they are.
    "ui_title": "# MiniMax Chat",
    "ui_description": "Chat with MiniMax models on the AI/ML API. Settings are in the panel on the right.",
    "ui_more": "Chats and about",
    "ui_settings": "Settings",
    "ui_settings_heading": "### Settings",
    "ui_model": "Model",
    "ui_model_info": "MiniMax models first. abab6.5s-chat is retired by the API; pick a successor if it fails.",
    "ui_model_info_fallback": "MiniMax models first. abab6.5s-chat is retired by the API; when a model is refused, "
                              "this server's fallback model answers.",
    "ui_system_prompt": "System prompt",
    "ui_system_prompt_info": "Sent first with every message.",
    "ui_temperature": "Temperature",
    "ui_top_p": "Top-p",
    "ui_max_tokens": "Max tokens",
    "ui_max_tokens_info": "Longest reply allowed.",
    "ui_advanced": "Advanced",
    "ui_presence_penalty": "Presence penalty",
    "ui_frequency_penalty": "Frequency penalty",
    "ui_seed": "Seed (0 = random)",
    "ui_key": "Your own AI/ML API key (optional)",
    "ui_key_placeholder": "Uses the server's key when empty",
    "ui_key_info": "Kept only in this browser tab and sent with each message; never stored or logged.",
    "ui_export_heading": "### Export",
    "ui_export": "Export conversation",
    "ui_new_chat": "New chat",
    "ui_chatbot": "Conversation",
    "ui_chatbot_placeholder": "**MiniMax Chat**<br>Ask anything, or attach a document, code or an image.",
    "ui_input_placeholder": "Message MiniMax…",
    # Notices and facts (rendered on the server by `t`).
    "empty_reply_title": "⚠️ Empty reply",
    "empty_reply": "The model returned no text{reason}. Try rephrasing.",
    "finish_reason_note": " (finish reason: {reason})",
    "dropped_title": "✂️ Older messages left out",
    "dropped": "The {count} oldest messages of this conversation did not fit the model's context window, so the "
               "model did not see them for this reply. Start a new chat, or pick a model with a larger window, "
               "to keep everything in view.",
    "dropped_by_limit": "The {count} oldest messages of this conversation are beyond the number of earlier messages "
                        "this server sends, so the model did not see them for this reply. Start a new chat to keep "
                        "everything in view.",
    "cut_title": "✂️ Reply cut short",
    "cut": "The reply reached Max tokens. Raise it in Settings, or say “continue”.",
    "request_id": "Request id: `{id}`",
    "unexpected": "Something went wrong on this server. Send the message again.",
    "facts_tokens": "{prompt} → {completion} tokens",
    "facts_first_token": "{seconds} s to first token",
    "facts_speed": "{speed} tokens/s",
    "facts_seconds": "{seconds} s",
    "facts_model": "Model",
    "facts_finish_reason": "Finish reason",
    "facts_total_time": "Total time",
    "facts_credits": "Credits used",
    "facts_request_id": "Request id",
    "export_conversation": "Conversation",
    "export_exported": "Exported {when}",
    "export_you": "You",
    "export_assistant": "Assistant",
    # Titles of the error notices, one per ChatError class (chat_backend/errors.py).
    "error_ChatError": "Something went wrong",
    "error_ConfigError": "Configuration problem",
    "error_MissingKey": "No API key",
    "error_InvalidSettings": "Setting out of range",
    "error_BadInput": "Can't send this message",
    "error_Throttled": "Slow down",
    "error_Busy": "Server busy",
    "error_BadRequest": "Request rejected",
    "error_KeyRejected": "API key rejected",
    "error_OutOfCredits": "Out of credits",
    "error_ModelUnavailable": "Model unavailable",
    "error_RateLimited": "Rate limited",
    "error_ServerError": "The API is having trouble",
    "error_ConnectionFailed": "Can't reach the API",
    "error_TimedOut": "Timed out",
    "error_StreamBroken": "Connection cut",
    "error_BadResponse": "Unexpected answer",
    "error_UpstreamError": "The API reported an error",
    "error_EndpointNotFound": "Nothing at that address",
    "error_InvalidKey": "API key not usable",
}

ZH: dict[str, str] = {
    "ui_title": "# MiniMax 聊天",
    "ui_description": "通过 AI/ML API 与 MiniMax 模型对话。设置在右侧面板中。",
    "ui_more": "对话记录与说明",
    "ui_settings": "设置",
    "ui_settings_heading": "### 设置",
    "ui_model": "模型",
    "ui_model_info": "MiniMax 模型排在最前。abab6.5s-chat 已被 API 停用；如果出错，请选择后继模型。",
    "ui_model_info_fallback": "MiniMax 模型排在最前。abab6.5s-chat 已被 API 停用；"
                              "当某个模型被拒绝时，由本服务器的备用模型回答。",
    "ui_system_prompt": "系统提示词",
    "ui_system_prompt_info": "每条消息都会先发送它。",
    "ui_temperature": "温度",
    "ui_top_p": "Top-p",
    "ui_max_tokens": "最大 token 数",
    "ui_max_tokens_info": "回复允许的最大长度。",
    "ui_advanced": "高级",
    "ui_presence_penalty": "存在惩罚",
    "ui_frequency_penalty": "频率惩罚",
    "ui_seed": "随机种子（0 = 随机）",
    "ui_key": "你自己的 AI/ML API 密钥（可选）",
    "ui_key_placeholder": "留空时使用服务器的密钥",
    "ui_key_info": "只保存在此浏览器标签页中，随每条消息发送；从不存储或记录。",
    "ui_export_heading": "### 导出",
    "ui_export": "导出对话",
    "ui_new_chat": "新对话",
    "ui_chatbot": "对话",
    "ui_chatbot_placeholder": "**MiniMax 聊天**<br>随便问，或附上文档、代码或图片。",
    "ui_input_placeholder": "给 MiniMax 发消息…",
    "empty_reply_title": "⚠️ 空回复",
    "empty_reply": "模型没有返回文字{reason}。请换个说法试试。",
    "finish_reason_note": "（结束原因：{reason}）",
    "dropped_title": "✂️ 较早的消息未发送",
    "dropped": "此对话中最早的 {count} 条消息超出了模型的上下文窗口，因此模型这次回复没有看到它们。"
               "开始新对话，或选择上下文窗口更大的模型，可以让所有内容都在视野内。",
    "dropped_by_limit": "此对话中最早的 {count} 条消息超出了本服务器随每条消息发送的历史消息数，"
                        "因此模型这次回复没有看到它们。"
                        "开始新对话可以让所有内容都在视野内。",
    "cut_title": "✂️ 回复被截断",
    "cut": "回复已达到最大 token 数。请在设置中调高，或者说“继续”。",
    "request_id": "请求 ID：`{id}`",
    "unexpected": "服务器出了点问题。请再发送一次消息。",
    "facts_tokens": "{prompt} → {completion} 个 token",
    "facts_first_token": "首个 token 用时 {seconds} 秒",
    "facts_speed": "每秒 {speed} 个 token",
    "facts_seconds": "{seconds} 秒",
    "facts_model": "模型",
    "facts_finish_reason": "结束原因",
    "facts_total_time": "总用时",
    "facts_credits": "消耗额度",
    "facts_request_id": "请求 ID",
    "export_conversation": "对话",
    "export_exported": "导出于 {when}",
    "export_you": "你",
    "export_assistant": "助手",
    "error_ChatError": "出了点问题",
    "error_ConfigError": "配置有误",
    "error_MissingKey": "没有 API 密钥",
    "error_InvalidSettings": "设置超出范围",
    "error_BadInput": "无法发送这条消息",
    "error_Throttled": "请慢一点",
    "error_Busy": "服务器繁忙",
    "error_BadRequest": "请求被拒绝",
    "error_KeyRejected": "API 密钥被拒绝",
    "error_OutOfCredits": "额度已用完",
    "error_ModelUnavailable": "模型不可用",
    "error_RateLimited": "请求过于频繁",
    "error_ServerError": "API 出现故障",
    "error_ConnectionFailed": "无法连接 API",
    "error_TimedOut": "超时",
    "error_StreamBroken": "连接中断",
    "error_BadResponse": "意外的应答",
    "error_UpstreamError": "API 报告了错误",
    "error_EndpointNotFound": "该地址上没有服务",
    "error_InvalidKey": "API 密钥不可用",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def t(key: str, lang: str = DEFAULT, **params: Any) -> str:
    """The text for `key` in `lang` (English when the language is not known), with `params` filled in."""
    text = CATALOGUES.get(lang, EN)[key]
    return text.format(**params) if params else text


def placeholders(text: str) -> set[str]:
    """The names of the {placeholders} in a catalogue text."""
    return {name for _, name, _, _ in Formatter().parse(text) if name}


def language(accept_language: str | None) -> str:
    """The catalogue for an Accept-Language header: the most preferred language we have, else English."""
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "").split(","):
        match = _RANGE.match(part)
        if not match:
            continue
        try:
            q = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        code = match.group(1).lower()
        if code in CATALOGUES and q > best_q:
            best, best_q = code, q
    return best


def browser_translations() -> dict[str, dict[str, str]]:
    """The page's texts for `gr.I18n`, under the locale names browsers report."""
    ui = {lang: {key: text for key, text in catalogue.items() if key.startswith("ui_")}
          for lang, catalogue in CATALOGUES.items()}
    for texts in ui.values():  # Gradio's own key for ChatInterface's button, which its zh-CN lacks
        texts["chat_interface.new_chat"] = texts["ui_new_chat"]
    return {"en": ui["en"], "zh": ui["zh"], "zh-CN": ui["zh"], "zh-SG": ui["zh"]}
