"""Notes are Markdown: rendered by markdown-it-py without raw HTML, then cleaned by nh3.

Two walls: the parser never passes HTML through (``html: False``), and the sanitiser keeps
only the tags and link schemes below, whatever the parser produced. Images are dropped (a
note must not make the reader's browser fetch anything), links get ``rel=noopener``.
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "s", "code", "pre", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
# No style attributes: the content security policy refuses inline styles anyway.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
# "@name" not preceded by a word character, so an email address is not a mention.
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_.+-]*[A-Za-z0-9_])")

_parser = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(["table", "strikethrough"])


def render(text: str) -> str:
    """Safe HTML for a note's Markdown ``text``."""
    html = _parser.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


def mentioned_names(text: str) -> set[str]:
    """The lower-cased names written as ``@name`` in ``text``."""
    return {name.lower() for name in MENTION.findall(text or "")}
