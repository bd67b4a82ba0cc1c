"""Fitted item-item weights kept beside a checkpoint, keyed by everything the fit depends on.

`mmrec train` fits the item-item model on the train split; `mmrec evaluate` refits it on the same
split, and `mmrec recommend` on every interaction, once per call. At 200k items one fit takes
minutes, so each fit is written to `<checkpoint folder>/item_item/<key>.safetensors` and reused by
the next fit with the same key. The key is a sha256 over the 0/1 interaction pattern (B depends on
nothing else of the interactions), the content features and masks, the solver's settings and
constants, and this format's version: other data or settings never meet a stale B.

Files are written atomically (safetensors, no pickle); a damaged or foreign file is ignored with
a warning and refitted. The `keep` most recently used files stay, older ones are deleted, so a
checkpoint folder holds at most `cache.item_item_fits` of them (one per data the model served).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.fileio import atomic_path, remove_stale_temps

log = logging.getLogger(__name__)

FORMAT = "mmrec.item_item/1"
FOLDER = "item_item"


def _update(digest: Any, array: np.ndarray | torch.Tensor) -> None:
    values = array.detach().cpu().contiguous().numpy() if isinstance(array, torch.Tensor) else np.ascontiguousarray(array)
    digest.update(f"{values.dtype.str}{values.shape}".encode())
    digest.update(memoryview(values).cast("B"))


def fit_key(interactions: sp.csr_matrix, content: Sequence[tuple[torch.Tensor, torch.Tensor]],
            settings: dict[str, object]) -> str:
    """sha256 (hex) of the fit's inputs: the 0/1 pattern, content (features, masks) and `settings`.

    B depends on X^T X, which neither the order of the user rows nor empty rows change: the pattern
    enters as the sorted digests of its non-empty rows, so training (rows = the user encoder's order)
    and evaluation (rows = the train users' order) of the same split share a key.
    """
    pattern = interactions.tocsr(copy=True)
    pattern.sum_duplicates()
    # Every stored entry is a 1 of the pattern, zeros too, as the fits binarize (`binary.data[:] = 1`): a recency
    # weight that underflowed to 0 (an item hundreds of positions old at half-life 2) is still an interaction. The
    # key had dropped them, so evaluate looked for another key than train had stored, and refitted the same B.
    pattern.sort_indices()
    indices, indptr = pattern.indices.astype(np.int64), pattern.indptr
    rows = sorted(hashlib.blake2b(indices[indptr[r]:indptr[r + 1]].tobytes(), digest_size=16).digest()
                  for r in np.flatnonzero(np.diff(indptr)))
    digest = hashlib.sha256(FORMAT.encode())
    digest.update(repr(sorted(settings.items())).encode())
    digest.update(str(pattern.shape[1]).encode())
    digest.update(b"".join(rows))
    for features, mask in content:
        _update(digest, features)
        _update(digest, mask)
    return digest.hexdigest()


@dataclass(frozen=True)
class ItemItemStore:
    """The fitted-weights folder of one checkpoint; `keep` 0 turns the store off."""

    folder: Path
    keep: int = 2

    @classmethod
    def beside(cls, checkpoint: Path, keep: int) -> ItemItemStore | None:
        return cls(Path(checkpoint).parent / FOLDER, keep) if keep > 0 else None

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a fit key: {key!r}")
        return self.folder / f"{key}.safetensors"

    def load(self, key: str, device: torch.device | str) -> torch.Tensor | None:
        """The weights stored under `key` (dense, or sparse CSR), or None when absent or unreadable."""
        path = self.path(key)
        if not path.is_file():
            return None
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                meta = handle.metadata() or {}
                if meta.get("format") != FORMAT or meta.get("key") != key:
                    raise ValueError(f"metadata {meta}")
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            shape = tuple(int(v) for v in meta["shape"].split(","))
            values = tensors["weights" if meta["layout"] == "dense" else "values"]
            if values.dtype != torch.float32:
                raise ValueError(f"dtype {values.dtype}")
            if meta["layout"] == "dense":
                weights = tensors["weights"]
                if tuple(weights.shape) != shape:
                    raise ValueError(f"shape {tuple(weights.shape)} != {shape}")
            else:
                weights = torch.sparse_csr_tensor(tensors["crow_indices"], tensors["col_indices"].long(),
                                                  tensors["values"], size=shape, check_invariants=True)
        except Exception as exc:  # damaged or foreign file: refit, never fail on a cache
            log.warning("Ignoring the stored item-item fit %s (%s); refitting.", path, str(exc)[:200])
            return None
        with contextlib.suppress(OSError):  # a read-only folder still serves its fits
            os.utime(path)  # most recently used: the last to be pruned
        return weights.to(device)

    def save(self, key: str, weights: torch.Tensor) -> Path | None:
        """Write `weights` under `key` atomically, then keep only the `keep` most recently used fits.

        A folder that cannot be written (read-only, disk full) costs a warning, not the run: None.
        """
        from safetensors import SafetensorError
        from safetensors.torch import save_file

        path = self.path(key)
        weights = weights.detach().cpu()
        meta = {"format": FORMAT, "key": key, "shape": ",".join(str(v) for v in weights.shape)}
        if weights.layout == torch.sparse_csr:
            meta["layout"] = "sparse_csr"
            tensors = {"crow_indices": weights.crow_indices().contiguous(),
                       "col_indices": weights.col_indices().to(torch.int32).contiguous(),
                       "values": weights.values().contiguous()}
        else:
            meta["layout"] = "dense"
            tensors = {"weights": weights.contiguous()}
        try:
            remove_stale_temps(path)
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=meta)
            self._prune()
        except (OSError, SafetensorError) as exc:  # safetensors reports a full disk or a size limit as its own
            log.warning("Could not store the item-item fit in %s (%s); the next run will refit.", self.folder, exc)
            return None
        return path

    def _prune(self) -> None:
        fits = sorted(self.folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in fits[self.keep:]:
            old.unlink(missing_ok=True)
