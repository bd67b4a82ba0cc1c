"""The processed-table contract: items.parquet and interactions.parquet under processed_dir."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmrec.errors import DataError
from mmrec.fileio import atomic_path

ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
REPORT_FILE = "preprocess_report.json"
ITEM_COLUMNS = (
    "item_id",
    "title",
    "description",
    "text",
    "image_path",
    "has_image",
    "image_fingerprint",
    "text_fingerprint",
)
_HINT = "Run `mmrec preprocess` first (with the same --config)."


def save_items(items: pd.DataFrame, processed_dir: Path) -> Path:
    """Write items.parquet atomically (image_path relative to processed_dir)."""
    missing = [name for name in ITEM_COLUMNS if name not in items.columns]
    if missing:
        raise ValueError(f"items table lacks contract columns {missing}")
    path = Path(processed_dir) / ITEMS_FILE
    with atomic_path(path) as tmp:
        items.to_parquet(tmp, index=False)
    return path


def save_interactions(interactions: pd.DataFrame, processed_dir: Path) -> Path:
    """Write interactions.parquet atomically."""
    path = Path(processed_dir) / INTERACTIONS_FILE
    with atomic_path(path) as tmp:
        interactions.to_parquet(tmp, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Processed table {path} not found.", hint=_HINT)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(
            f"Processed table {path} cannot be read: {exc}", hint=f"{_HINT} Use --force-reprocess."
        ) from None


def load_items(processed_dir: Path) -> pd.DataFrame:
    """items.parquet with image_path resolved to absolute path strings (None when there is no image)."""
    processed_dir = Path(processed_dir)
    items = _read(processed_dir / ITEMS_FILE)
    root = processed_dir.resolve()
    items["item_id"] = items["item_id"].astype(str)
    items["image_path"] = pd.Series(
        [str(root / p) if isinstance(p, str) and p else None for p in items["image_path"]],
        index=items.index,
        dtype=object,
    )
    items["has_image"] = items["has_image"].astype(bool)
    return items


def load_interactions(processed_dir: Path) -> pd.DataFrame:
    """interactions.parquet (user_id, item_id as str; timestamp int64 / rating float64 when present)."""
    frame = _read(Path(processed_dir) / INTERACTIONS_FILE)
    frame["user_id"] = frame["user_id"].astype(str)
    frame["item_id"] = frame["item_id"].astype(str)
    return frame
