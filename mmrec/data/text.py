"""Text cleaning (unicode, markup, control characters, whitespace, length cap) and the backbone input text."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]{0,1000}>")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def clean_text(value: object, max_length: int) -> str:
    """NFKC-normalised text without markup or control characters, whitespace collapsed, capped.

    Missing values (None, NaN) become "". Markup is unescaped before tags are stripped, so
    `&lt;b&gt;` and `<b>` both disappear.
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value)
    text = unicodedata.normalize("NFKC", text)
    for _ in range(2):  # twice: entities may hide tags (`&lt;b&gt;`), tags may hide entities
        text = html.unescape(text)
        text = _SCRIPT_OR_STYLE.sub(" ", text)
        text = _TAG.sub(" ", text)
    # Control/format characters (category C*) become spaces so words on either side stay apart.
    text = "".join(" " if unicodedata.category(char).startswith("C") else char for char in text)
    text = _WHITESPACE.sub(" ", text).strip()
    return cap_text(text, max_length)


def cap_text(text: str, max_length: int) -> str:
    """`text` cut to at most `max_length` characters, on a word boundary when one is near the cap."""
    if len(text) <= max_length:
        return text
    cut = text[:max_length]
    space = cut.rfind(" ")
    return cut[:space] if space > max_length * 0.8 else cut


def item_text(*parts: str) -> str:
    """The text fed to text backbones: "{title}. {description}" with empty parts left out (more parts: the same
    joint between each, e.g. several description columns)."""
    text = ""
    for part in (p.strip() for p in parts):
        if text and part:
            text += (" " if text.endswith((".", "!", "?")) else ". ") + part
        else:
            text = text or part
    return text
