"""markdown: model output to inert HTML for the shared page, the way the chat shows it.

markdown-it-py (installed with Gradio) with raw HTML off, so `<script>`, `<iframe>` and `on…` attributes
arrive as visible text; its link check already refuses `javascript:`, `vbscript:` and `file:` URLs. Code is
highlighted on the server by Pygments (class names only: the page's CSS colours them). TeX between the chat's
four delimiters is kept out of Markdown's way and emitted as `<span class="math">` holding the source, which
the page's script typesets with KaTeX when it can and which stays readable when it cannot.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

MATH_DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False), ("$", "$", False))
CODE_CLASS = "code"  # Pygments' CSS class prefix on the page
LIGHT_CODE_STYLE, DARK_CODE_STYLE = "default", "monokai"


def render(text: str) -> str:
    """HTML for one message's Markdown; nothing in `text` can add markup the page would run."""
    return str(_parser().render(text))


@functools.cache
def code_css() -> str:
    """Pygments colours for both themes, the dark set under `prefers-color-scheme: dark`."""
    light = HtmlFormatter(style=LIGHT_CODE_STYLE).get_style_defs(f".{CODE_CLASS}")
    dark = HtmlFormatter(style=DARK_CODE_STYLE).get_style_defs(f".{CODE_CLASS}")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"


@functools.cache
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "highlight": _highlight}).enable(["table", "strikethrough"])
    parser.inline.ruler.before("escape", "math", _math)
    parser.add_render_rule("math", _render_math)
    parser.add_render_rule("link_open", _render_link)
    return parser


def _highlight(code: str, language: str, _attrs: Any) -> str:
    """Highlighted HTML for a fenced block with a known language; "" lets markdown-it escape it plainly."""
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""
    body = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="{CODE_CLASS}"><code class="language-{html.escape(language)}">{body}</code></pre>\n'


def _math(state: StateInline, silent: bool) -> bool:
    """TeX between one of the chat's delimiters; a lone `$` (a price, say) stays text.

    The nearest closing delimiter found is remembered per paragraph, so many unclosed openers cost one scan,
    not one per opener.
    """
    for left, right, display in MATH_DELIMITERS:
        if not state.src.startswith(left, state.pos):
            continue
        start = state.pos + len(left)
        end = _closing(state, right, start)
        if end <= start or end + len(right) > state.posMax:
            return False
        tex = state.src[start:end]
        if left == "$" and (tex[0].isspace() or tex[-1].isspace() or state.src[end + 1 : end + 2].isdigit()):
            return False
        if not silent:
            token = state.push("math", "", 0)
            token.content, token.markup, token.meta = tex, left, {"display": display, "right": right}
        state.pos = end + len(right)
        return True
    return False


def _closing(state: StateInline, right: str, start: int) -> int:
    found: dict[tuple[int, str], int] = state.env.setdefault("math_closing", {})
    key = (id(state.src), right)
    known = found.get(key)
    if known is None or (known != -1 and known < start):
        known = found[key] = state.src.find(right, start)
    return known


def _render_math(_self: Any, tokens: Any, index: int, _options: Any, _env: Any) -> str:
    token = tokens[index]
    kind = "math display" if token.meta["display"] else "math"
    source = token.markup + token.content + token.meta["right"]
    return f'<span class="{kind}" data-tex="{html.escape(token.content)}">{html.escape(source)}</span>'


def _render_link(self: Any, tokens: Any, index: int, options: Any, env: Any) -> str:
    """Links leave without telling the target where they came from, and lend it no ranking."""
    tokens[index].attrSet("rel", "nofollow ugc noopener noreferrer")
    return str(self.renderToken(tokens, index, options, env))
