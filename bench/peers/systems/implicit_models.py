"""`implicit` library peers: cosine ItemKNN, cosine UserKNN and ALS.

implicit's CosineRecommender fitted on the user-item matrix gives item-item similarities; fitted
on the transposed (item-user) matrix it gives user-user similarities. Scores are computed from
those similarity matrices directly (sum of neighbour similarities), as implicit's recommend does.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from bench.peers.protocols import Split
from bench.peers.systems import BenchSystem, Context, Scorer


def _train_matrix(split: Split) -> sp.csr_matrix:
    return split.matrices["train"].astype(np.float32).tocsr()


def _fit_quietly(model, matrix: sp.csr_matrix) -> None:
    # implicit converts its own intermediate to CSR and warns about it; the warning is not ours to fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        model.fit(matrix, show_progress=False)


def fit_item_knn(split: Split, config: dict, ctx: Context) -> Scorer:
    from implicit.nearest_neighbours import CosineRecommender

    train = _train_matrix(split)
    model = CosineRecommender(K=config["K"], num_threads=ctx.threads)
    _fit_quietly(model, train)
    similarity = model.similarity.tocsr()  # [n_items, n_items]
    return lambda rows: np.asarray((train[rows] @ similarity).todense(), dtype=np.float32)


def fit_user_knn(split: Split, config: dict, ctx: Context) -> Scorer:
    from implicit.nearest_neighbours import CosineRecommender

    train = _train_matrix(split)
    model = CosineRecommender(K=config["K"], num_threads=ctx.threads)
    _fit_quietly(model, train.T.tocsr())  # rows = users as "items": user-user similarity
    similarity = model.similarity.tocsr()  # [n_users, n_users]
    return lambda rows: np.asarray((similarity[rows] @ train).todense(), dtype=np.float32)


def fit_als(split: Split, config: dict, ctx: Context) -> Scorer:
    from implicit.cpu.als import AlternatingLeastSquares

    train = _train_matrix(split)
    model = AlternatingLeastSquares(factors=config["factors"], regularization=config["regularization"],
                                    alpha=config["alpha"], iterations=config["iterations"],
                                    random_state=ctx.seed, num_threads=ctx.threads)
    _fit_quietly(model, train)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return lambda rows: users[rows] @ items.T


SYSTEMS = [
    BenchSystem("ItemKNN", "implicit", [{"K": k} for k in (10, 20, 50, 100, 200, 500)], fit_item_knn,
                notes="implicit CosineRecommender on user-item", reads_text=False),
    BenchSystem("UserKNN", "implicit", [{"K": k} for k in (10, 20, 50, 100, 200, 500)], fit_user_knn,
                notes="implicit CosineRecommender on item-user", reads_text=False),
    BenchSystem(
        "ALS", "implicit",
        [{"factors": f, "regularization": r, "alpha": a, "iterations": 15}
         for f, r, a in ((64, 0.01, 1.0), (64, 0.1, 10.0), (128, 0.01, 1.0), (128, 0.1, 10.0),
                         (128, 1.0, 10.0), (256, 0.1, 10.0))],
        fit_als, reads_text=False,
    ),
]
