"""Approximate candidates from an inner-product index over item vectors (faiss, extra `mmrec[ann]`).

Only vectors can be indexed: for the multimodal model the two-tower user and item vectors. The
candidates then get the model's exact scores (with the item-item blend when it is on) and the same
seen-item masking and top-K as exact scoring, via a [b, n_items] matrix that is -inf off the pool.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from mmrec.errors import ConfigError

ANN_KINDS = ("faiss_ivf", "faiss_hnsw")
_IVF_POINTS_PER_LIST = 39  # faiss wants >= 39 training points per inverted list
_HNSW_NEIGHBOURS = 32


def require_faiss():
    """The faiss module, or a ConfigError saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "The approximate index (--ann / inference.ann) needs faiss-cpu, which is not installed.",
            hint="Install the extra: pip install 'mmrec[ann]' (or faiss-cpu), or drop --ann to score exactly.",
        ) from None
    return faiss


def _as_float32(vectors: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().cpu().numpy()
    return np.ascontiguousarray(vectors, dtype=np.float32)


class ItemIndex:
    """An inner-product faiss index over item vectors [n_items, d]; search gives candidate catalogue rows.

    faiss_ivf: IndexIVFFlat with ~4 sqrt(n) lists (fewer for small catalogues), `nprobe` lists searched.
    faiss_hnsw: IndexHNSWFlat, 32 neighbours, efSearch = max(pool, 4 * nprobe).
    """

    def __init__(self, item_vectors: torch.Tensor | np.ndarray, kind: str, nprobe: int = 16) -> None:
        if kind not in ANN_KINDS:
            raise ConfigError(f"Unknown approximate index {kind!r}.", hint=f"Use one of: {', '.join(ANN_KINDS)}.")
        faiss = require_faiss()
        vectors = _as_float32(item_vectors)
        self.n_items, dim = vectors.shape
        self.kind, self.nprobe = kind, int(nprobe)
        if kind == "faiss_ivf":
            nlist = max(1, min(int(4 * math.sqrt(self.n_items)), self.n_items // _IVF_POINTS_PER_LIST))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.train(vectors)
            self.index.nprobe = min(self.nprobe, nlist)
        else:
            self.index = faiss.IndexHNSWFlat(dim, _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        self.index.add(vectors)

    def search(self, user_vectors: torch.Tensor | np.ndarray, pool: int) -> np.ndarray:
        """[b, min(pool, n_items)] candidate catalogue rows per user, best first; -1 where fewer were found."""
        pool = max(1, min(int(pool), self.n_items))
        if self.kind == "faiss_hnsw":
            self.index.hnsw.efSearch = max(pool, 4 * self.nprobe)
        _, rows = self.index.search(_as_float32(user_vectors), pool)
        return rows


ColumnScoreFn = Callable[[torch.Tensor], torch.Tensor]  # columns [b, c] -> exact scores [b, c]


def candidate_score_matrix(candidates: np.ndarray, score_columns: ColumnScoreFn, n_items: int,
                           device: torch.device | str = "cpu") -> torch.Tensor:
    """[b, n_items] float32: exact scores on each row's candidates, -inf elsewhere.

    Missing candidates (-1) repeat the row's first one, so every write of a column carries its own score.
    """
    columns = torch.as_tensor(candidates, dtype=torch.long, device=device)
    columns = torch.where(columns < 0, columns[:, :1], columns)
    scores = torch.full((len(columns), n_items), float("-inf"), device=device)
    if len(columns):
        scores.scatter_(1, columns, score_columns(columns).to(device=device, dtype=torch.float32))
    return scores


def recall_at_k(approximate: Sequence[np.ndarray], exact: Sequence[np.ndarray]) -> float:
    """Mean over users of |approximate top-K ∩ exact top-K| / |exact top-K| (users with an empty exact list skipped)."""
    recalls = [len(np.intersect1d(a, e)) / len(e) for a, e in zip(approximate, exact) if len(e)]
    return float(np.mean(recalls)) if recalls else float("nan")
