"""Content fingerprints that go into feature-store keys (edited image or text -> new key)."""

from __future__ import annotations

import hashlib
import math

import pandas as pd

from mmrec.features.file_digests import FileDigests
from mmrec.features.store_format import UNREADABLE


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(str(value).strip())


def item_image_fingerprints(items: pd.DataFrame, digests: FileDigests) -> list[str | None]:
    """Per row: sha256 of the image file as it is now (remembered by size and mtime in `digests`),
    UNREADABLE when it cannot be read, None = no image.

    The table's image_fingerprint column is not trusted: the file may have been replaced since
    preprocessing, and a key must name the bytes its vector was computed from.
    """
    paths = items["image_path"].tolist() if "image_path" in items else [None] * len(items)
    has_image = items["has_image"].tolist() if "has_image" in items else [_present(p) for p in paths]
    return [None if not has or not _present(path) else (digests.digest(str(path)) or UNREADABLE)
            for path, has in zip(paths, has_image)]


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
