"""The processed-table contract: items.parquet and interactions.parquet under processed_dir.

manifest.json records the size and sha256 of every table written through this module. Readers
refuse a table the manifest does not vouch for: tables from different runs (a kill between two
writes, files copied by hand) or a folder written before manifests existed never load silently.
"""

from __future__ import annotations

from pathlib import Path

import hashlib

import pandas as pd

from mmrec.errors import DataError, SystemResourceError
from mmrec.fileio import atomic_path, atomic_write_json, read_json

ITEMS_FILE = "items.parquet"
INTERACTIONS_FILE = "interactions.parquet"
REPORT_FILE = "preprocess_report.json"
# (user_id, item_id) pairs whose latest rating was below data.positive_rating_threshold: no positives, but the
# user has seen them, so recommend does not suggest them back.
RATED_BELOW_FILE = "rated_below_threshold.parquet"
MANIFEST_FILE = "manifest.json"
_MANIFEST_FORMAT = 1
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
_REDO_HINT = "Run `mmrec preprocess --force-reprocess` (with the same --config) to rebuild the folder."


def save_items(items: pd.DataFrame, processed_dir: Path) -> Path:
    """Write items.parquet atomically (image_path relative to processed_dir)."""
    missing = [name for name in ITEM_COLUMNS if name not in items.columns]
    if missing:
        raise ValueError(f"items table lacks contract columns {missing}")
    path = Path(processed_dir) / ITEMS_FILE
    with atomic_path(path) as tmp:
        items.to_parquet(tmp, index=False)
    record_in_manifest(path)
    return path


def save_interactions(interactions: pd.DataFrame, processed_dir: Path) -> Path:
    """Write interactions.parquet atomically."""
    path = Path(processed_dir) / INTERACTIONS_FILE
    with atomic_path(path) as tmp:
        interactions.to_parquet(tmp, index=False)
    record_in_manifest(path)
    return path


def save_rated_below(pairs: pd.DataFrame, processed_dir: Path) -> Path:
    """Write rated_below_threshold.parquet (user_id, item_id) atomically."""
    path = Path(processed_dir) / RATED_BELOW_FILE
    with atomic_path(path) as tmp:
        pairs[["user_id", "item_id"]].astype(str).to_parquet(tmp, index=False)
    record_in_manifest(path)
    return path


def load_rated_below(processed_dir: Path) -> pd.DataFrame:
    """The pairs rated below the positive threshold (empty when none, or for a folder written before them)."""
    path = Path(processed_dir) / RATED_BELOW_FILE
    if not path.is_file():
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str)})
    return _read(path).astype({"user_id": str, "item_id": str})


def _describe(path: Path) -> dict[str, int | str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _manifest(folder: Path) -> dict | None:
    try:
        manifest = read_json(folder / MANIFEST_FILE)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"{folder / MANIFEST_FILE} cannot be read: {exc}", hint=_REDO_HINT) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise DataError(f"{folder / MANIFEST_FILE} is not a processed-folder manifest.", hint=_REDO_HINT)
    return manifest


def record_in_manifest(path: Path) -> None:
    """Record `path`'s size and sha256 in the manifest of its folder (written atomically)."""
    path = Path(path)
    manifest = _manifest(path.parent) or {"format": _MANIFEST_FORMAT, "files": {}}
    manifest["files"][path.name] = _describe(path)
    atomic_write_json(path.parent / MANIFEST_FILE, manifest)


def verify_in_manifest(path: Path) -> None:
    """DataError unless `path` is exactly the file its folder's manifest records."""
    path = Path(path)
    manifest = _manifest(path.parent)
    if manifest is None:
        raise DataError(
            f"Processed folder {path.parent} has no manifest ({MANIFEST_FILE}): it was written by an "
            "interrupted run or an older mmrec, so its tables may come from different runs.",
            hint=_REDO_HINT,
        )
    if manifest["files"].get(path.name) != _describe(path):
        raise DataError(
            f"{path.name} does not match {path.parent / MANIFEST_FILE}: the processed tables come "
            "from different runs or were changed by hand.",
            hint=_REDO_HINT,
        )


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Processed table {path} not found.", hint=_HINT)
    verify_in_manifest(path)
    try:
        # In line, no threads: under a memory limit pyarrow's read-ahead failed its allocation in a worker thread and
        # the read hung forever (a 3.5 GB `ulimit -v`); read this way it fails, and says why below.
        return pd.read_parquet(path, pre_buffer=False, use_threads=False)
    except MemoryError:
        raise  # the CLI says it: out of memory, not a damaged file
    except Exception as exc:  # pyarrow raises several types for damaged files
        if "Failed to launch worker thread" in str(exc):  # arrow's own pool, out of memory for a thread's stack
            raise SystemResourceError(f"Reading {path} failed: {exc}.", hint="The process is out of memory (a "
                                      "limit such as `ulimit -v`?): run it where more memory is free.") from None
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


def interactions_sha256(processed_dir: Path) -> str | None:
    """The sha256 the manifest records for interactions.parquet (None without one): what a split was made from."""
    manifest = _manifest(Path(processed_dir))
    entry = (manifest or {}).get("files", {}).get(INTERACTIONS_FILE)
    return entry.get("sha256") if isinstance(entry, dict) else None


def load_interactions(processed_dir: Path) -> pd.DataFrame:
    """interactions.parquet (user_id, item_id as str; timestamp int64 / rating float64 when present)."""
    frame = _read(Path(processed_dir) / INTERACTIONS_FILE)
    frame["user_id"] = frame["user_id"].astype(str)
    frame["item_id"] = frame["item_id"].astype(str)
    return frame
