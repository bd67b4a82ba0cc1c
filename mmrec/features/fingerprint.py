"""Content fingerprints that go into feature-store keys (edited image or text -> new key)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pandas as pd

_CHUNK = 1 << 20


def file_fingerprint(path: str | Path) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(str(value).strip())


def item_image_fingerprints(items: pd.DataFrame) -> list[str | None]:
    """Per row: the image fingerprint (from the table, else hashed now), None = no usable image."""
    paths = items["image_path"].tolist() if "image_path" in items else [None] * len(items)
    has_image = items["has_image"].tolist() if "has_image" in items else [_present(p) for p in paths]
    given = items["image_fingerprint"].tolist() if "image_fingerprint" in items else [None] * len(items)
    out: list[str | None] = []
    for path, has, fingerprint in zip(paths, has_image, given):
        if not has or not _present(path):
            out.append(None)
        elif _present(fingerprint):
            out.append(str(fingerprint))
        else:
            out.append(file_fingerprint(path) or f"unreadable:{path}")
    return out


def item_texts(items: pd.DataFrame) -> list[str]:
    """What text backbones read for each row ('' when absent)."""
    if "text" not in items:
        return [""] * len(items)
    return ["" if not _present(value) else str(value) for value in items["text"].tolist()]


def item_text_fingerprints(items: pd.DataFrame, texts: list[str]) -> list[str | None]:
    """Per row: the text fingerprint (from the table, else hashed now), None = empty text."""
    given = items["text_fingerprint"].tolist() if "text_fingerprint" in items else [None] * len(items)
    return [
        None if not text.strip() else (str(fp) if _present(fp) else text_fingerprint(text))
        for text, fp in zip(texts, given)
    ]
