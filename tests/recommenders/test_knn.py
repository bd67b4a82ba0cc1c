"""KNN baselines: shrunk cosine matches a direct dense computation; binary data is not all-1.0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from mmrec.recommenders import knn
from mmrec.recommenders.knn import ItemKNNRecommender, UserKNNRecommender, topk_cosine_neighbours


def _random_train(n_users=30, n_items=25, density=0.2, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    return pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items]})


def _dense_shrunk_cosine(x: np.ndarray, shrink: float) -> np.ndarray:
    """Reference: rows of x compared by <a,b> / (|a||b| + shrink), self-similarity removed."""
    dots = x @ x.T
    norms = np.linalg.norm(x, axis=1)
    sims = dots / np.maximum(np.outer(norms, norms) + shrink, 1e-12)
    np.fill_diagonal(sims, 0.0)
    return sims


def _keep_topk(sims: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros_like(sims)
    for r, row in enumerate(sims):
        top = np.argsort(-row, kind="stable")[:k]
        out[r, top] = row[top]
    return np.where(out > 0, out, 0.0)


def test_binary_cosine_is_not_one_for_every_co_rated_pair():
    # Items a and b share one user of many: plain cosine on binary vectors is 1/sqrt(3*3), not 1.
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u4", "u5"], "item_id": ["a", "b", "a", "a", "b", "b"]})
    model = ItemKNNRecommender(neighbors=5, shrinkage=0.0).fit(train, ["a", "b"])
    assert model.similarity[0, 1] == pytest.approx(1 / 3, rel=1e-5)
    assert model.similarity[0, 0] == 0.0  # an item is not its own neighbour


def test_shrinkage_damps_similarity():
    train = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["a", "b"]})
    plain = ItemKNNRecommender(neighbors=5, shrinkage=0.0).fit(train, ["a", "b"])
    shrunk = ItemKNNRecommender(neighbors=5, shrinkage=10.0).fit(train, ["a", "b"])
    assert plain.similarity[0, 1] == pytest.approx(1.0)
    assert shrunk.similarity[0, 1] == pytest.approx(1 / 11, rel=1e-5)


@pytest.mark.parametrize("shrink", [0.0, 5.0])
def test_item_similarity_matches_direct_computation(shrink):
    train = _random_train()
    items = [f"i{i}" for i in range(25)]
    model = ItemKNNRecommender(neighbors=4, shrinkage=shrink).fit(train, items)
    x = model.interactions.toarray()
    expected = _keep_topk(_dense_shrunk_cosine(x.T, shrink), 4)
    got = model.similarity.toarray()
    # Ties at the k-th place may pick different columns; compare the kept values per row instead.
    np.testing.assert_allclose(np.sort(got, axis=1), np.sort(expected, axis=1), rtol=1e-5, atol=1e-7)
    assert (np.count_nonzero(got, axis=1) <= 4).all()
    # Scores are the user's row times the neighbourhoods.
    scores = model.score(["u0", "u3"]).numpy()
    np.testing.assert_allclose(scores, _popularity_below(x[[0, 3]] @ got.T, x), rtol=1e-5, atol=1e-6)


def _popularity_below(scores: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Score-0 items get popularity / (largest + 1) - 1: below every scored item, ordered by popularity."""
    popularity = x.sum(0)
    return np.where(scores > 0, scores, popularity / (popularity.max() + 1.0) - 1.0)


def test_items_no_neighbour_speaks_for_rank_below_by_popularity():
    """As plain zeros they tied, and a tie counts against the model: on sparse data item_knn read as near random."""
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u3", "u4", "u5", "u6"],
                          "item_id": ["a", "b", "a", "c", "c", "c", "d"]})
    for model in (ItemKNNRecommender(neighbors=5, shrinkage=0.0), UserKNNRecommender(neighbors=5, shrinkage=0.0)):
        scores = model.fit(train, ["a", "b", "c", "d", "e"]).score(["u1"])[0].numpy()
        # u1 had a and b; c (3 users) and d (1 user) share no user with them, and e has none.
        assert scores[2] > scores[3] > scores[4] and (scores[2:] < 0).all() and scores.max() > 0


def test_user_knn_matches_direct_computation():
    train = _random_train(seed=1)
    items = [f"i{i}" for i in range(25)]
    users = ["u2", "u7", "u11"]
    # Whole neighbourhood (no ties to break): scores equal the dense reference exactly.
    model = UserKNNRecommender(neighbors=100, shrinkage=2.0).fit(train, items)
    x = model.interactions.toarray()
    rows = [model.user_index[u] for u in users]
    reference = _dense_shrunk_cosine(x, 2.0)
    np.testing.assert_allclose(model.score(users).numpy(), _popularity_below(reference[rows] @ x, x), rtol=1e-4,
                               atol=1e-5)
    # Small neighbourhood: the kept similarities are the k largest of the reference.
    small = UserKNNRecommender(neighbors=3, shrinkage=2.0).fit(train, items)
    kept = topk_cosine_neighbours(small.interactions[rows], small.interactions, 3, 2.0, self_cols=np.array(rows))
    expected = np.sort(_keep_topk(reference, 3)[rows], axis=1)
    np.testing.assert_allclose(np.sort(kept.toarray(), axis=1), expected, rtol=1e-5)


def test_blocked_computation_equals_single_block(monkeypatch):
    train = _random_train(n_users=40, n_items=30, seed=3)
    items = [f"i{i}" for i in range(30)]
    whole = ItemKNNRecommender(neighbors=5, shrinkage=1.0).fit(train, items).similarity.toarray()
    monkeypatch.setattr(knn, "_BLOCK_CELLS", 40)  # ~1 row per block
    blocked = ItemKNNRecommender(neighbors=5, shrinkage=1.0).fit(train, items).similarity.toarray()
    np.testing.assert_allclose(np.sort(whole, 1), np.sort(blocked, 1), rtol=1e-6)


def test_neighbourhood_is_sparse_top_k():
    matrix = sp.random(200, 50, density=0.1, format="csr", random_state=0)
    matrix.data[:] = 1.0
    sims = topk_cosine_neighbours(matrix, matrix, 7, 0.0, self_cols=np.arange(200))
    assert sp.issparse(sims) and sims.shape == (200, 200)
    assert np.diff(sims.indptr).max() <= 7


@pytest.mark.parametrize("cls", [ItemKNNRecommender, UserKNNRecommender])
def test_unknown_user_gets_popularity_and_is_counted(cls):
    train = pd.DataFrame({"user_id": ["u1", "u2", "u2", "u3"], "item_id": ["a", "a", "b", "c"]})
    model = cls(neighbors=2, shrinkage=0.0).fit(train, ["a", "b", "c", "d"])
    scores = model.score(["stranger", "u1"], device=torch.device("cpu"))
    assert scores.shape == (2, 4)
    assert scores[0].tolist() == [2.0, 1.0, 1.0, 0.0]
    assert model.n_fallback_users == 1 and "stranger" in model.fallback_users
