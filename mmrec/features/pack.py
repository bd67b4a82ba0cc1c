"""A dense float16 snapshot of one backbone's vectors beside the diskcache, for fast bulk reads.

Reading 100k vectors row by row out of SQLite costs seconds; the same rows as one memory-mapped
`.npy` cost a fancy-index. The pack is only an accelerator: its keys are the store's keys (content
fingerprints included), so a key it lacks — new or edited content — falls through to the
diskcache, and nothing stale is served. A pointer file (`packs/<name>.json`: keys + npy file name)
is replaced atomically after its `.npy` is complete, so readers never see half a pack.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from mmrec.fileio import atomic_path, atomic_write_json, read_json

PACK_DIR = "packs"


class FeaturePack:
    """The pack of one key prefix (`modality|backbone|weights_id`) in a combo folder."""

    def __init__(self, folder: Path, prefix: str) -> None:
        self.dir = Path(folder) / PACK_DIR
        self.name = hashlib.sha256(prefix.encode("utf-8")).hexdigest()[:16]
        self.pointer = self.dir / f"{self.name}.json"
        self._loaded: tuple[float, dict[str, int], np.ndarray] | None = None

    def load(self) -> tuple[dict[str, int], np.ndarray] | None:
        """(key -> row, [rows, dim] float16 memmap), or None when there is no readable pack."""
        try:
            stamp = self.pointer.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if self._loaded is not None and self._loaded[0] == stamp:
            return self._loaded[1], self._loaded[2]
        try:
            pointer = read_json(self.pointer)
            matrix = np.load(self.dir / pointer["npy"], mmap_mode="r")
            keys = pointer["keys"]
        except (OSError, ValueError, KeyError):
            return None  # a pack being replaced or damaged: the diskcache still has every vector
        if matrix.dtype != np.float16 or matrix.ndim != 2 or len(keys) != matrix.shape[0]:
            return None
        index = {key: row for row, key in enumerate(keys)}
        self._loaded = (stamp, index, matrix)
        return index, matrix

    def remove(self) -> None:
        """Delete the pack (pointer first, so no reader picks up a half-removed pack)."""
        previous = read_json(self.pointer).get("npy") if self.pointer.is_file() else None
        with contextlib.suppress(OSError):
            self.pointer.unlink()
        if previous:
            with contextlib.suppress(OSError):
                os.unlink(self.dir / previous)

    def write(self, keys: list[str], matrix: np.ndarray) -> None:
        """Replace the pack with `matrix` [len(keys), dim] float16 (best effort: errors are ignored)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            npy_name = f"{self.name}-{uuid.uuid4().hex[:12]}.npy"
            with atomic_path(self.dir / npy_name) as tmp, open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(matrix, dtype=np.float16))
            previous = read_json(self.pointer).get("npy") if self.pointer.is_file() else None
            atomic_write_json(self.pointer, {"npy": npy_name, "keys": keys})
        except (OSError, ValueError):
            return
        if previous and previous != npy_name:
            # Readers that mapped the old file keep it alive until they close it (POSIX semantics).
            with contextlib.suppress(OSError):
                os.unlink(self.dir / previous)
