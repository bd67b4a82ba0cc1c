"""Neighbourhood baselines on the binary user-item matrix: item_knn and user_knn.

Similarity is cosine with shrinkage, sim(a, b) = <x_a, x_b> / (||x_a|| ||x_b|| + shrink): on binary
data two items sharing one user are NOT perfectly similar (unlike per-pair-normalised cosine), and
shrinkage further damps pairs with little support. Similarities are computed in row blocks and only
the top `neighbors` per row are kept, so no dense items x items matrix is ever built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mmrec.recommenders.base import RECOMMENDERS, Recommender
from mmrec.recommenders.popularity import FallbackCounter, item_popularity

# Dense cells per similarity block (~64 MB of float32): bounds memory for any catalogue size.
_BLOCK_CELLS = 1 << 24


def binary_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary CSR float32 matrix with duplicates collapsed to 1."""
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _topk_rows(dense: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, value) of the top-k strictly positive entries of every row of dense [b, n]."""
    k = min(k, dense.shape[1])
    values, cols = torch.topk(dense, k, dim=1)
    rows = torch.arange(dense.shape[0]).unsqueeze(1).expand_as(cols)
    keep = values > 0
    return rows[keep].numpy(), cols[keep].numpy(), values[keep].numpy()


def topk_cosine_neighbours(
    query: sp.csr_matrix,
    base: sp.csr_matrix,
    neighbors: int,
    shrinkage: float,
    self_cols: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Sparse [n_query, n_base] keeping each query row's top-`neighbors` shrunk-cosine similarities.

    query: [n_query, d], base: [n_base, d] binary CSR. self_cols: [n_query] base row that IS each
    query row, whose similarity is dropped (an item or user is not its own neighbour).
    """
    base_t = base.T.tocsr()
    query_norms = np.sqrt(np.asarray(query.multiply(query).sum(1)).ravel())
    base_norms = torch.from_numpy(np.sqrt(np.asarray(base.multiply(base).sum(1)).ravel()))
    block = max(1, _BLOCK_CELLS // max(1, base.shape[0]))
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, query.shape[0], block):
        stop = min(start + block, query.shape[0])
        dots = torch.from_numpy((query[start:stop] @ base_t).toarray())  # [b, n_base]
        norms = torch.from_numpy(query_norms[start:stop]).unsqueeze(1) * base_norms.unsqueeze(0)
        sims = dots / (norms + shrinkage).clamp_min(1e-12)
        if self_cols is not None:
            sims[torch.arange(stop - start), torch.from_numpy(self_cols[start:stop])] = 0.0
        r, c, v = _topk_rows(sims.float(), neighbors)
        rows_out.append(r + start)
        cols_out.append(c)
        vals_out.append(v)
    rows = np.concatenate(rows_out) if rows_out else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_out) if cols_out else np.zeros(0, dtype=np.int64)
    vals = np.concatenate(vals_out) if vals_out else np.zeros(0, dtype=np.float32)
    return sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(query.shape[0], base.shape[0]))


class _KNNBase(Recommender, FallbackCounter):
    """Shared fit/fallback for the neighbourhood models; unknown users get popularity scores."""

    def __init__(self, neighbors: int = 50, shrinkage: float = 10.0) -> None:
        Recommender.__init__(self)
        FallbackCounter.__init__(self)
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.interactions = sp.csr_matrix((0, 0), dtype=np.float32)  # [n_users, n_items]
        self.popularity = np.zeros(0, dtype=np.float32)

    def _fit_matrix(self, train: pd.DataFrame, item_ids: Sequence[str]) -> None:
        rows, cols = self._index_catalogue(train, item_ids)
        self.interactions = binary_matrix(rows, cols, (len(self.user_index), self.n_items))
        self.popularity = item_popularity(cols, self.n_items)

    def _known_rows(self, user_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(positions in user_ids of known users, their matrix rows); unknown ones are recorded."""
        positions, rows = [], []
        for position, user in enumerate(user_ids):
            row = self.user_index.get(str(user))
            if row is None:
                self.fallback_users.add(str(user))
            else:
                positions.append(position)
                rows.append(row)
        return np.asarray(positions, dtype=np.int64), np.asarray(rows, dtype=np.int64)

    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        out = torch.from_numpy(self.popularity).unsqueeze(0).repeat(len(user_ids), 1)
        positions, rows = self._known_rows(user_ids)
        if len(rows):
            out[torch.from_numpy(positions)] = torch.from_numpy(self._with_popularity_below(self._score_rows(rows)))
        return out.to(device)

    def _with_popularity_below(self, scores: np.ndarray) -> np.ndarray:
        """Items no neighbour speaks for (score 0) ranked by popularity, below every scored item: their score
        becomes popularity / (most popular + 1) - 1, in [-1, 0). As plain zeros they all tied, and evaluation
        counts a tie against the model, so on sparse data (a few items a user) the baseline read as near random."""
        share = (self.popularity / (float(self.popularity.max(initial=0.0)) + 1.0)).astype(np.float32) - 1.0
        return np.where(scores > 0, scores, share[None, :])

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@RECOMMENDERS.register("item_knn")
class ItemKNNRecommender(_KNNBase):
    """score(u, j) = sum of sim(j, i) over the user's items i among j's top-k neighbours."""

    name = "item_knn"

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> ItemKNNRecommender:
        self._fit_matrix(train, item_ids)
        items_by_users = self.interactions.T.tocsr()  # [n_items, n_users]
        # similarity[j] holds the neighbourhood of target item j.
        self.similarity = topk_cosine_neighbours(
            items_by_users, items_by_users, self.neighbors, self.shrinkage, self_cols=np.arange(self.n_items)
        )
        self._similarity_t = self.similarity.T.tocsr()
        return self

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray((self.interactions[rows] @ self._similarity_t).todense(), dtype=np.float32)


@RECOMMENDERS.register("user_knn")
class UserKNNRecommender(_KNNBase):
    """score(u, j) = sum of sim(u, v) over u's top-k neighbours v who interacted with j."""

    name = "user_knn"

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> UserKNNRecommender:
        self._fit_matrix(train, item_ids)
        return self

    def _score_rows(self, rows: np.ndarray) -> np.ndarray:
        # Neighbourhoods are computed per scored batch: memory is O(batch x users), never users^2.
        neighbours = topk_cosine_neighbours(
            self.interactions[rows], self.interactions, self.neighbors, self.shrinkage, self_cols=rows
        )
        return np.asarray((neighbours @ self.interactions).todense(), dtype=np.float32)
