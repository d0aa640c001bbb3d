"""i18n: every text the app itself shows, in English and Simplified Chinese; one catalogue per language.

Keys starting `ui_` are the page's component text (labels, hints, placeholders); app.py hands
them to `gr.I18n`, so the browser picks the language. The rest are notices, the facts line and export
headings, rendered on the server by `t` in the language of the request's Accept-Language. The model never
receives any of this text: notices are never sent back, and examples are the visitor's own message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    "cut_while_thinking": "The model spent all of Max tokens thinking, before it could answer. Raise Max tokens in "
    "Settings and send again.",
    "thought_pending": "💭 Thinking…",
    "thought_done": "💭 Thought for {seconds} s",
    "thought_untimed": "💭 Thinking",
    "thought_cut": "💭 Thinking cut off after {seconds} s",
    "thought_cut_untimed": "💭 Thinking (cut off)",
    "request_id": "Request id: `{id}`",
    "unexpected": "Something went wrong on this server. Send the message again.",
    "facts_tokens": "{prompt} → {completion} tokens",
    "facts_first_token": "{seconds} s to first token",
    "facts_tokens_reasoning": "{prompt} → {completion} tokens ({reasoning} reasoning)",
    "facts_first_thought": "{seconds} s to first thought",
    "facts_first_answer": "{seconds} s to answer",
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
    "error_Restarting": "Server restarting",
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
    # Error and limit notices (ChatError key= …), one text per key; parts whose text starts with a space in
    # English are appended to another message, so each language spaces its own sentences.
    "kept": " The part of the reply that arrived is kept above.",
    "net_dns": "Could not find the API host {host}. Check the internet connection and AIMLAPI_BASE_URL.",
    "net_refused": "Could not connect to {host}: the connection was refused. Check AIMLAPI_BASE_URL, or try later.",
    "net_connect_timeout": "Could not connect to {host} within {seconds} s. Try again in a moment.",
    "net_read_timeout": "The API sent nothing for {seconds} s, so the request was abandoned.{kept} Try again, or "
    "ask for a shorter answer.",
    "net_tls": "A secure connection to {host} could not be set up (TLS error). Check the system clock and proxy.",
    "net_stream_cut": "The connection to the API was cut while the reply was streaming.{kept} Send again to retry.",
    "net_failed": "The connection to {host} failed before a reply arrived. Try again in a moment.",
    "endpoint_missing": "The API has nothing at {url} (404). Check AIMLAPI_BASE_URL.",
    "status_message": "{base}{vendor}{advice}{page}",
    "status_400": "The API rejected the request.",
    "status_401": "The API key was rejected. Check AIMLAPI_KEY (or the key pasted in Settings); keys are at "
    "https://aimlapi.com/app/keys.",
    "status_403": "The account behind this API key has run out of credits. Top up at https://aimlapi.com/app/billing/.",
    "status_404": "The API could not find this model or endpoint.",
    "status_429": "The API is rate-limiting requests right now.",
    "status_500": "The API had an internal error, or the model is under maintenance.",
    "status_502": "The API's gateway failed (502 Bad Gateway).",
    "status_503": "The API is temporarily unavailable (503).",
    "status_504": "The model took too long to generate a reply (504).",
    "status_other": "The API answered with HTTP {status}.",
    "vendor_said": " It said: “{vendor}”.",
    "wait_seconds": " Wait {seconds} s and send again.",
    "wait_minute": " Wait a minute and send again.",
    "api_side": " This is on the API's side; send again in a moment.",
    "answer_page": " The answer was a web page (probably from a proxy or gateway), not the API's own error.",
    "answer_text": " The answer was text that is not JSON, not the API's own error.",
    "stream_error": "The API reported an error in the middle of the reply: “{vendor}”.{kept} Send again to retry.",
    "unspecified_error": "an unspecified error",
    "bad_response": "{problem} Send again in a moment.",
    "bad_garbled": "The reply stream contained a garbled piece.",
    "bad_long_line": "The reply stream held a line longer than {mib} MiB, so it was abandoned.",
    "bad_page": "The API answered with a web page (probably from a proxy) instead of a reply.",
    "bad_not_json": "The API answered with something that is not JSON instead of a reply.",
    "bad_no_reply": "The API's answer held no reply.",
    "temperature_max": "{model} accepts a temperature between 0 and {max}, got {value}.",
    "unsupported_setting": "{model} does not accept “{label}”; set it to 0 in Settings.",
    "key_pasted": "The API key pasted in Settings {problem}",
    "key_too_long": "is {length} characters long; keys are much shorter. {paste}",
    "key_bad_char": "has {shown} at position {position}, which no key contains. {paste}",
    "key_space": "a space",
    "key_char": "“{char}” ({name})",
    "paste_again": "Copy the key again from https://aimlapi.com/app/keys and paste only the key.",
    "no_key": "No API key is set. Put AIMLAPI_KEY=<your key> in a .env file next to app.py, add it as a Secret "
    "named AIMLAPI_KEY in your Hugging Face Space's settings, or paste your own key in the Settings "
    "panel. Keys are at https://aimlapi.com/app/keys.",
    "settings_no_model": "Choose a model before sending.",
    "settings_model_name": "The model name is {length} characters; model names have at most {limit}. Choose a model "
    "from the list in Settings.",
    "settings_range": "{label} must be between {low} and {high}, got {value}.",
    "settings_type": "{label} has a value of the wrong kind; reload the page to reset Settings.",
    "settings_too_long": "{label} is {length} characters long; at most {limit} are accepted.",
    "settings_count": "This message came with {count} settings instead of {expected}; reload the page.",
    "throttled_session": "Too many messages from this chat: at most {amount} a minute. Wait {seconds} s, then send "
    "again (your message is kept above; edit or retry it).",
    "throttled_address": "Too many messages from your network address: at most {amount} a minute. Wait {seconds} "
    "s, then send again (your message is kept above; edit or retry it).",
    "busy": "The server is already answering its maximum of {count} messages at once. Send again in a moment.",
    "busy_address": "Your network address already has {replies} in progress, the most one address may have at once "
    "so that others are served too. Send again when one has finished.",
    "busy_checking": "The server could not check its limits in time. Send again in a moment.",
    "throttled_refused": "Too many refused messages from your network address: at most {amount} a minute. Wait "
    "{seconds} s, then send again.",
    "busy_session": "This chat already has {replies} in progress, the most one chat may have at once. Send again when "
    "one has finished.",
    "restarting": "This server is restarting. Send your message again: it will go to another server "
    "(your message is kept above; edit or retry it).",
    "budget_used_up": "This demo's budget for today is used up. It resets at 00:00 UTC (in {hours} h {minutes} "
    "min). To go on now, paste your own AI/ML API key in Settings.",
    "attachment_forged": "An attachment of this message was not uploaded through this page, so it was not read. "
    "Attach the file again with the paperclip button.",
    "attachment_missing": "The attachment {name} is no longer available; attach it again.",
    "attachment_gone": "[attachment {name} is no longer available]",
    "model_unavailable": "The model {name} {reason}. Choose another in Settings, for example: {names}.",
    "model_retired": "has been retired by the API",
    "model_not_offered": "is not offered by the API",
    "fallback_title": "🔁 Answered by {model}",
    "fallback_retired": "{requested} is retired by the API, so {model} answered. Change it in Settings → Model.",
    "fallback_not_offered": "{requested} is not offered by the API, so {model} answered. Change it in Settings → "
    "Model.",
    "fallback_sent_title": "🔁 Sent to {model}",
    "fallback_retired_sent": "{requested} is retired by the API, so the message went to {model}. Change it in "
    "Settings → Model.",
    "fallback_not_offered_sent": "{requested} is not offered by the API, so the message went to {model}. Change it in "
    "Settings → Model.",
    "input_too_long": "This message is {length} characters; the limit is {limit}. Shorten it, or attach the text "
    "as a file.",
    "input_only_images": "This model does not accept images, so there is nothing to send. Choose a model that reads "
    "images in Settings, or add a question in words.",
    "input_empty": "Type a message or attach a file first.",
    "input_too_many_files": "This message has {count} attachments; one message may carry at most {limit}. Send them "
    "over several messages.",
    "input_file_too_big": "{name} is {size} MB; attachments may be at most {limit} MB.",
    "input_files_too_big": "These attachments are {size} MB together; one message may carry at most {limit} MB. "
    "Send them over several messages.",
    "input_file_crowded": "{name} does not fit in one request after this long conversation; start a new chat to ask "
    "about it.",
    "input_images_too_much": "The images of this message are too much for one request (at most {count} images and "
    "{limit} MB of image data, after resizing). Send fewer images at a time.",
    "input_not_readable": "{name} is not a text file, PDF or image (PNG, JPG, GIF, WEBP), so the model can't read it.",
    "input_not_utf8": "{name} is not UTF-8 text; save it as UTF-8 and attach it again.",
    "input_bad_pdf": "{name} could not be read as a PDF ({error}).",
    "input_pdf_pages": "{name} has {count} pages; PDFs may have at most {limit}.",
    "input_pdf_no_text": "{name} has no extractable text (a scanned PDF?); attach its pages as images instead.",
    "input_context": "This message is about {tokens} tokens; with {reserved} reserved for the reply it does not fit "
    "the model's {window}-token window. Shorten it, lower Max tokens, or pick a model with a larger "
    "window.",
    "image_too_many_pixels": "{name} is {width} × {height} pixels; images may have at most {limit} megapixels. "
    "Resize it and attach it again.",
    "image_unreadable": "{name} could not be read as an image (it may be damaged); attach it again, or save it as PNG "
    "or JPEG first.",
    "note_title": "📎 Attachments left out",
    "note_gone_one": "{names} from earlier in this conversation is no longer on the server, so the model did not see "
    "it. Attach it again to bring it back.",
    "note_gone_many": "{names} from earlier in this conversation are no longer on the server, so the model did not "
    "see them. Attach them again to bring them back.",
    "note_unseen_one": "This model does not accept images, so {names} is not sent. Choose a model that reads images "
    "in Settings to ask about it.",
    "note_unseen_many": "This model does not accept images, so {names} are not sent. Choose a model that reads "
    "images in Settings to ask about them.",
    "note_crowded_one": "This conversation holds more text than a model reads at once, so {names} is left out. Start "
    "a new chat to go on with it.",
    "note_crowded_many": "This conversation holds more text than a model reads at once, so {names} are left out. "
    "Start a new chat to go on with them.",
    "note_trimmed": "Only the newest images fit in one request, so the model did not see the oldest: {names}. Start "
    "a new chat to talk about many images.",
    "error_BudgetExhausted": "Today's budget is used up",
    "error_ShareRefused": "Not shared",
    "share_nothing": "There is nothing to share yet: send a message first.",
    "share_too_big": "This conversation is {size}; a shared link holds at most {limit}. Export it instead, or share "
    "a shorter chat.",
    "share_unavailable": "Sharing is unavailable right now: the server's storage is not responding. Try again in a "
    "minute; Export still works.",
    "share_too_often": "Your network address has shared {count} this hour, the most allowed. Try again in {wait}.",
    "share_store_full": "The server's space for shared links is full, so no new link can be made until older ones "
    "expire or are deleted; existing links are kept. Export the conversation instead.",
    "share_address_full": "Links shared from your network address already hold {limit}, the most one address may "
    "keep. Delete some under Your shared links, or export the conversation instead.",
    "count_conversations_one": "{count} conversation",
    "count_conversations_many": "{count} conversations",
    "count_minutes_one": "{count} minute",
    "count_minutes_many": "{count} minutes",
    "count_replies_one": "{count} reply",
    "count_replies_many": "{count} replies",
    "share_summary": "Anyone with this link can read the conversation.{expires}{left_out}",
    "share_expires": " It expires on {date}.",
    "share_date_format": "%d %b %Y",
    "share_left_out": " Attachments are not included: {names}.",
    "share_delete_unavailable": "⚠️ The server's storage is not responding; nothing was deleted. Try again.",
    "share_deleted": "Deleted. The link now leads to a “not found” page.",
    "share_already_gone": "That link had already expired or been deleted.",
    "sharepage_title": "Shared conversation",
    "sharepage_meta": "A conversation with {model} · shared on {date}",
    "sharepage_system_prompt": "System prompt",
    "sharepage_left_out": "Attachments are not included in shared links: {names}.",
    "sharepage_not_included": "(not included)",
    "sharepage_you": "You",
    "sharepage_assistant": "Assistant",
    "sharepage_start": "Start your own chat",
    "sharepage_copy": "Copy",
    "sharepage_copied": "Copied",
    "sharepage_missing_title": "Link not found",
    "sharepage_missing_heading": "This link doesn't lead anywhere",
    "sharepage_missing_text": "The conversation was deleted, or the link has expired or was copied incompletely.",
    "sharepage_trouble_title": "Try again soon",
    "sharepage_trouble_heading": "This conversation can't be shown right now",
    "sharepage_trouble_text": "The server's storage is not responding. Try again in a minute.",
    "model_label_retired": "{model} (retired by the API)",
    "model_label_unlisted": "{model} (not in the catalogue)",
    "exports_too_often": "Too many exports at once. Try again in {seconds} s.",
    "ui_share_heading": "### Share",
    "ui_share_prompt": "Include the system prompt",
    "ui_share": "Share conversation",
    "ui_share_link": "Read-only link",
    "ui_share_links": "Your shared links",
    "ui_unshare": "Delete this link",
    # The edge (web/): requests refused before Gradio sees them, answered as {"detail": ...}.
    "edge_unreadable": "This request could not be checked, so it was refused.",
    "edge_forged": "This request names a file that was not uploaded here.",
    "edge_foreign": "This request holds something the page never sends, so it was refused.",
    "edge_too_deep": "This request is nested too deeply.",
    "edge_too_complex": "This request has too many parts to check.",
    "edge_too_large": "Request too large: this server accepts at most {mb} MB here.",
    "edge_login_throttled": "Too many failed logins from your address. Try again in {seconds} s.",
    "edge_body_budget": "Too much data from your network address in the last minute (at most {mb} MB a minute). "
    "Try again in {seconds} s.",
    "edge_upload_budget": "Too many uploads from your network address in the last minute (at most {mb} MB a minute). "
    "Try again in {seconds} s.",
    "edge_upload_full": "The server's space for uploads is full (at most {mb} MB for everyone). Try again later.",
    "edge_upload_share": "Your network address has used its share of the server's space for uploads (at most {mb} MB "
    "in {period}). Try again in {wait}.",
    "edge_too_many_files": "Too many files in one upload: at most {limit} at a time, one message's attachments. "
    "Attach the rest to another message.",
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
    "cut_while_thinking": "模型在思考时就用完了最大 token 数，还没来得及回答。请在设置中调高最大 token 数后再发送。",
    "thought_pending": "💭 思考中…",
    "thought_done": "💭 已思考 {seconds} 秒",
    "thought_untimed": "💭 思考过程",
    "thought_cut": "💭 思考在 {seconds} 秒后中断",
    "thought_cut_untimed": "💭 思考过程（已中断）",
    "request_id": "请求 ID：`{id}`",
    "unexpected": "服务器出了点问题。请再发送一次消息。",
    "facts_tokens": "{prompt} → {completion} 个 token",
    "facts_first_token": "首个 token 用时 {seconds} 秒",
    "facts_tokens_reasoning": "{prompt} → {completion} 个 token（其中推理 {reasoning} 个）",
    "facts_first_thought": "开始思考用时 {seconds} 秒",
    "facts_first_answer": "开始回答用时 {seconds} 秒",
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
    "error_Restarting": "服务器正在重启",
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
    "kept": "已收到的部分回复保留在上方。",
    "net_dns": "找不到 API 主机 {host}。请检查网络连接和 AIMLAPI_BASE_URL。",
    "net_refused": "无法连接到 {host}：连接被拒绝。请检查 AIMLAPI_BASE_URL，或稍后再试。",
    "net_connect_timeout": "{seconds} 秒内无法连接到 {host}。请稍后再试。",
    "net_read_timeout": "API 在 {seconds} 秒内没有发送任何内容，因此请求已放弃。{kept}请重试，或要求更简短的回答。",
    "net_tls": "无法与 {host} 建立安全连接（TLS 错误）。请检查系统时钟和代理。",
    "net_stream_cut": "回复流式传输时，与 API 的连接被切断。{kept}请再次发送以重试。",
    "net_failed": "在回复到达之前，与 {host} 的连接失败。请稍后再试。",
    "endpoint_missing": "API 在 {url} 上没有服务（404）。请检查 AIMLAPI_BASE_URL。",
    "status_message": "{base}{vendor}{advice}{page}",
    "status_400": "API 拒绝了该请求。",
    "status_401": "API 密钥被拒绝。请检查 AIMLAPI_KEY（或在设置中粘贴的密钥）；密钥可在 "
    "https://aimlapi.com/app/keys 获取。",
    "status_403": "此 API 密钥对应的账户额度已用完。请在 https://aimlapi.com/app/billing/ 充值。",
    "status_404": "API 找不到此模型或端点。",
    "status_429": "API 当前正在限制请求频率。",
    "status_500": "API 内部出错，或模型正在维护。",
    "status_502": "API 网关故障（502 Bad Gateway）。",
    "status_503": "API 暂时不可用（503）。",
    "status_504": "模型生成回复用时过长（504）。",
    "status_other": "API 返回了 HTTP {status}。",
    "vendor_said": "它的原话是：“{vendor}”。",
    "wait_seconds": "请等待 {seconds} 秒后再发送。",
    "wait_minute": "请等待一分钟后再发送。",
    "api_side": "这是 API 方面的问题；请稍后再发送。",
    "answer_page": "返回的是一个网页（可能来自代理或网关），而不是 API 自己的错误信息。",
    "answer_text": "返回的是非 JSON 文本，而不是 API 自己的错误信息。",
    "stream_error": "API 在回复中途报告了错误：“{vendor}”。{kept}请再次发送以重试。",
    "unspecified_error": "未说明的错误",
    "bad_response": "{problem}请稍后再发送。",
    "bad_garbled": "回复流中有一段内容已损坏。",
    "bad_long_line": "回复流中有一行超过 {mib} MiB，因此已放弃。",
    "bad_page": "API 返回的是一个网页（可能来自代理），而不是回复。",
    "bad_not_json": "API 返回的内容不是 JSON，而不是回复。",
    "bad_no_reply": "API 的应答中没有回复。",
    "temperature_max": "{model} 接受的温度范围是 0 到 {max}，当前为 {value}。",
    "unsupported_setting": "{model} 不接受“{label}”；请在设置中将其设为 0。",
    "key_pasted": "设置中粘贴的 API 密钥{problem}",
    "key_too_long": "长达 {length} 个字符；密钥要短得多。{paste}",
    "key_bad_char": "在第 {position} 位含有{shown}，而密钥中不会有这个字符。{paste}",
    "key_space": "一个空格",
    "key_char": "“{char}”（{name}）",
    "paste_again": "请从 https://aimlapi.com/app/keys 重新复制密钥，并只粘贴密钥本身。",
    "no_key": "尚未设置 API 密钥。请在 app.py 旁的 .env 文件中写入 AIMLAPI_KEY=<你的密钥>，"
    "或在 Hugging Face Space 的设置中添加名为 AIMLAPI_KEY 的 Secret，或在设置面板中粘贴你自己的密钥。"
    "密钥可在 https://aimlapi.com/app/keys 获取。",
    "settings_no_model": "发送前请先选择模型。",
    "settings_model_name": "模型名称有 {length} 个字符；模型名称最多 {limit} 个字符。请在设置的列表中选择模型。",
    "settings_range": "{label}必须在 {low} 到 {high} 之间，当前为 {value}。",
    "settings_type": "{label}的值类型不对；请刷新页面以重置设置。",
    "settings_too_long": "{label}长 {length} 个字符；最多接受 {limit} 个。",
    "settings_count": "这条消息带有 {count} 项设置，而不是 {expected} 项；请刷新页面。",
    "throttled_session": "此对话发送的消息太多：每分钟最多 {amount} 条。请等待 {seconds} 秒后再发送"
    "（你的消息保留在上方，可以编辑或重试）。",
    "throttled_address": "你的网络地址发送的消息太多：每分钟最多 {amount} 条。请等待 {seconds} 秒后再发送"
    "（你的消息保留在上方，可以编辑或重试）。",
    "busy": "服务器已在同时回答最多 {count} 条消息。请稍后再发送。",
    "busy_address": "你的网络地址已有 {replies}正在进行，这是一个地址同时最多可有的数量，以便其他人也能得到"
    "回答。请等其中一条完成后再发送。",
    "busy_checking": "服务器未能及时检查其限制。请稍后再发送。",
    "throttled_refused": "你的网络地址被拒绝的消息太多：每分钟最多 {amount} 条。请等待 {seconds} 秒后再发送。",
    "busy_session": "此对话已有 {replies}正在进行，这是一个对话同时最多可有的数量。请等其中一条完成后再发送。",
    "restarting": "此服务器正在重启。请再次发送消息：它会转到另一台服务器（您的消息保留在上方，可编辑或重试）。",
    "budget_used_up": "本演示今天的预算已用完。它将在 UTC 00:00 重置（还有 {hours} 小时 {minutes} 分钟）。"
    "如需现在继续，请在设置中粘贴你自己的 AI/ML API 密钥。",
    "attachment_forged": "此消息的一个附件不是通过本页面上传的，因此没有读取。请用回形针按钮重新附加该文件。",
    "attachment_missing": "附件 {name} 已不可用；请重新附加。",
    "attachment_gone": "[附件 {name} 已不可用]",
    "model_unavailable": "模型 {name} {reason}。请在设置中选择其他模型，例如：{names}。",
    "model_retired": "已被 API 停用",
    "model_not_offered": "不由 API 提供",
    "fallback_title": "🔁 由 {model} 回答",
    "fallback_retired": "{requested} 已被 API 停用，因此由 {model} 回答。可在 设置 → 模型 中更改。",
    "fallback_not_offered": "{requested} 不由 API 提供，因此由 {model} 回答。可在 设置 → 模型 中更改。",
    "fallback_sent_title": "🔁 已改发给 {model}",
    "fallback_retired_sent": "{requested} 已被 API 停用，因此消息改发给了 {model}。可在 设置 → 模型 中更改。",
    "fallback_not_offered_sent": "{requested} 不由 API 提供，因此消息改发给了 {model}。可在 设置 → 模型 中更改。",
    "input_too_long": "这条消息有 {length} 个字符；上限是 {limit}。请缩短它，或把文字作为文件附加。",
    "input_only_images": "此模型不接受图片，因此没有可发送的内容。请在设置中选择能读图片的模型，或用文字提个问题。",
    "input_empty": "请先输入消息或附加文件。",
    "input_too_many_files": "这条消息有 {count} 个附件；一条消息最多可带 {limit} 个。请分几条消息发送。",
    "input_file_too_big": "{name} 有 {size} MB；附件最大为 {limit} MB。",
    "input_files_too_big": "这些附件合计 {size} MB；一条消息最多可带 {limit} MB。请分几条消息发送。",
    "input_file_crowded": "对话已经很长，{name} 放不进一次请求；请开始新对话再询问它。",
    "input_images_too_much": "这条消息的图片超出了一次请求的容量（缩放后最多 {count} 张图片、{limit} MB 图片数据）。"
    "请一次少发几张图片。",
    "input_not_readable": "{name} 不是文本文件、PDF 或图片（PNG、JPG、GIF、WEBP），模型无法读取。",
    "input_not_utf8": "{name} 不是 UTF-8 文本；请另存为 UTF-8 后重新附加。",
    "input_bad_pdf": "{name} 无法作为 PDF 读取（{error}）。",
    "input_pdf_pages": "{name} 有 {count} 页；PDF 最多 {limit} 页。",
    "input_pdf_no_text": "{name} 中没有可提取的文字（是扫描版 PDF 吗？）；请改为把各页作为图片附加。",
    "input_context": "这条消息约有 {tokens} 个 token；为回复预留 {reserved} 个后，超出了模型 {window} 个 token 的"
    "上下文窗口。请缩短消息、调低最大 token 数，或选择上下文窗口更大的模型。",
    "image_too_many_pixels": "{name} 为 {width} × {height} 像素；图片最多 {limit} 百万像素。请缩小后重新附加。",
    "image_unreadable": "{name} 无法作为图片读取（可能已损坏）；请重新附加，或先另存为 PNG 或 JPEG。",
    "note_title": "📎 未发送的附件",
    "note_gone_one": "此对话早先的 {names} 已不在服务器上，因此模型没有看到它。重新附加即可找回。",
    "note_gone_many": "此对话早先的 {names} 已不在服务器上，因此模型没有看到它们。重新附加即可找回。",
    "note_unseen_one": "此模型不接受图片，因此 {names} 没有发送。请在设置中选择能读图片的模型来询问它。",
    "note_unseen_many": "此模型不接受图片，因此 {names} 没有发送。请在设置中选择能读图片的模型来询问它们。",
    "note_crowded_one": "此对话中的文字超出了模型一次能读的量，因此 {names} 被略去。开始新对话即可继续讨论它。",
    "note_crowded_many": "此对话中的文字超出了模型一次能读的量，因此 {names} 被略去。开始新对话即可继续讨论它们。",
    "note_trimmed": "一次请求只放得下最新的图片，因此模型没有看到最早的：{names}。要讨论很多图片，请开始新对话。",
    "error_BudgetExhausted": "今天的预算已用完",
    "error_ShareRefused": "未分享",
    "share_nothing": "还没有可分享的内容：请先发送一条消息。",
    "share_too_big": "此对话有 {size}；分享链接最多容纳 {limit}。请改为导出，或分享较短的对话。",
    "share_unavailable": "分享暂时不可用：服务器的存储没有响应。请一分钟后再试；导出仍然可用。",
    "share_too_often": "你的网络地址本小时已分享 {count}，已达上限。请 {wait}后再试。",
    "share_store_full": "服务器用于分享链接的空间已满，在旧链接过期或被删除之前无法创建新链接；现有链接都会保留。"
    "请改为导出对话。",
    "share_address_full": "从你的网络地址分享的链接已占用 {limit}，这是一个地址最多可保留的量。请在“你分享的链接”中删除"
    "一些，或改为导出对话。",
    "count_conversations_one": "{count} 个对话",
    "count_conversations_many": "{count} 个对话",
    "count_minutes_one": "{count} 分钟",
    "count_minutes_many": "{count} 分钟",
    "count_replies_one": "{count} 条回复",
    "count_replies_many": "{count} 条回复",
    "share_summary": "任何拿到此链接的人都能阅读这个对话。{expires}{left_out}",
    "share_expires": "链接将于 {date} 过期。",
    "share_date_format": "%Y-%m-%d",
    "share_left_out": "附件不包含在内：{names}。",
    "share_delete_unavailable": "⚠️ 服务器的存储没有响应；没有删除任何内容。请重试。",
    "share_deleted": "已删除。该链接现在会打开“未找到”页面。",
    "share_already_gone": "该链接已经过期或已被删除。",
    "sharepage_title": "分享的对话",
    "sharepage_meta": "与 {model} 的对话 · 分享于 {date}",
    "sharepage_system_prompt": "系统提示词",
    "sharepage_left_out": "分享链接不包含附件：{names}。",
    "sharepage_not_included": "（未包含）",
    "sharepage_you": "你",
    "sharepage_assistant": "助手",
    "sharepage_start": "开始你自己的对话",
    "sharepage_copy": "复制",
    "sharepage_copied": "已复制",
    "sharepage_missing_title": "未找到链接",
    "sharepage_missing_heading": "此链接不指向任何内容",
    "sharepage_missing_text": "该对话已被删除，或链接已过期，或复制不完整。",
    "sharepage_trouble_title": "请稍后再试",
    "sharepage_trouble_heading": "此对话暂时无法显示",
    "sharepage_trouble_text": "服务器的存储没有响应。请一分钟后再试。",
    "model_label_retired": "{model}（已被 API 停用）",
    "model_label_unlisted": "{model}（不在模型目录中）",
    "exports_too_often": "同时导出的次数太多。请 {seconds} 秒后再试。",
    "ui_share_heading": "### 分享",
    "ui_share_prompt": "包含系统提示词",
    "ui_share": "分享对话",
    "ui_share_link": "只读链接",
    "ui_share_links": "你分享的链接",
    "ui_unshare": "删除此链接",
    # The edge (web/): requests refused before Gradio sees them, answered as {"detail": ...}.
    "edge_unreadable": "无法检查此请求，因此已拒绝。",
    "edge_forged": "此请求指向一个并非在此上传的文件。",
    "edge_foreign": "此请求包含页面从不发送的内容，因此已拒绝。",
    "edge_too_deep": "此请求嵌套层级过深。",
    "edge_too_complex": "此请求包含的部分过多，无法检查。",
    "edge_too_large": "请求过大：此处最多接受 {mb} MB。",
    "edge_login_throttled": "你的网络地址登录失败次数过多。请 {seconds} 秒后再试。",
    "edge_body_budget": "你的网络地址在过去一分钟内发送的数据过多（每分钟最多 {mb} MB）。请 {seconds} 秒后再试。",
    "edge_upload_budget": "你的网络地址在过去一分钟内上传过多（每分钟最多 {mb} MB）。请 {seconds} 秒后再试。",
    "edge_upload_full": "服务器的上传空间已满（所有人合计最多 {mb} MB）。请稍后再试。",
    "edge_upload_share": "你的网络地址已用完它在服务器上传空间中的份额（每 {period}最多 {mb} MB）。请 {wait}后再试。",
    "edge_too_many_files": "一次上传的文件过多：每次最多 {limit} 个，即一条消息的附件。其余的请附在另一条消息中。",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


@dataclass(frozen=True)
class Msg:
    """A catalogue key and its parameters, rendered once the visitor's language is known.

    A `Msg` may be a parameter of another: a message made of parts (a status text, then advice) is built from
    keys whose texts each stand alone, so both languages order and space their own sentences.
    """

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, lang: str = DEFAULT) -> str:
        """This message in `lang`."""
        return t(self.key, lang, **self.params)


def count_of(count: int, noun: str) -> Msg:
    """`count` things, in the singular or plural form (keys `count_<noun>_one` and `count_<noun>_many`)."""
    return Msg(f"count_{noun}_{'one' if count == 1 else 'many'}", {"count": count})


def t(key: str, lang: str = DEFAULT, **params: Any) -> str:
    """The text for `key` in `lang` (English when the language is not known), with `params` filled in.

    A parameter that is a `Msg` is rendered in the same language first.
    """
    text = CATALOGUES.get(lang, EN)[key]
    if not params:
        return text
    return text.format(
        **{name: value.render(lang) if isinstance(value, Msg) else value for name, value in params.items()}
    )


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
    ui = {
        lang: {key: text for key, text in catalogue.items() if key.startswith("ui_")}
        for lang, catalogue in CATALOGUES.items()
    }
    for texts in ui.values():  # Gradio's own key for ChatInterface's button, which its zh-CN lacks
        texts["chat_interface.new_chat"] = texts["ui_new_chat"]
    return {"en": ui["en"], "zh": ui["zh"], "zh-CN": ui["zh"], "zh-SG": ui["zh"]}
