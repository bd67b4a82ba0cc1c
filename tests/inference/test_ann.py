"""The faiss candidate index: recall on clustered vectors, pool scoring, and the missing-extra error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from mmrec.errors import ConfigError
from mmrec.inference.ann import ItemIndex, candidate_score_matrix, recall_at_k, require_faiss

pytest.importorskip("faiss")


def _clustered(n_items=2000, n_users=60, dim=16, n_clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim)) * 3
    items = centres[rng.integers(0, n_clusters, n_items)] + rng.normal(size=(n_items, dim))
    users = centres[rng.integers(0, n_clusters, n_users)] + rng.normal(size=(n_users, dim))
    return items.astype(np.float32), users.astype(np.float32)


@pytest.mark.parametrize("kind", ["faiss_ivf", "faiss_hnsw"])
def test_recall_against_exact_inner_product_is_high_on_clustered_vectors(kind):
    items, users = _clustered()
    exact = np.argsort(-(users @ items.T), axis=1)[:, :10]
    index = ItemIndex(items, kind, nprobe=8)
    if kind == "faiss_ivf":
        assert index.index.nlist > 1  # a real partition, not one exhaustive list
    found = index.search(users, 10)
    assert found.shape == (len(users), 10)
    assert recall_at_k(list(found), list(exact)) >= 0.9


def test_recall_at_k_counts_overlap_and_skips_empty_exact_lists():
    assert recall_at_k([np.array([1, 2, 3]), np.array([4])], [np.array([1, 2, 9]), np.array([], int)]) == 2 / 3
    assert recall_at_k([np.array([5, 6])], [np.array([7, 8])]) == 0.0


def test_pool_matrix_holds_exact_scores_on_candidates_and_minus_inf_elsewhere():
    candidates = np.array([[2, 0, -1], [1, 3, 2]])
    seen_columns = []

    def score_columns(cols):
        seen_columns.append(cols.clone())
        return cols.to(torch.float32) * 10 + torch.arange(len(cols)).unsqueeze(1)

    scores = candidate_score_matrix(candidates, score_columns, n_items=4)
    assert seen_columns[0].tolist() == [[2, 0, 2], [1, 3, 2]]  # -1 repeats the row's first candidate
    assert scores.tolist() == [[0.0, float("-inf"), 20.0, float("-inf")], [float("-inf"), 11.0, 21.0, 31.0]]


def test_search_pool_is_capped_by_the_catalogue():
    items, users = _clustered(n_items=50, n_users=3)
    assert ItemIndex(items, "faiss_hnsw").search(users, 500).shape == (3, 50)


def test_unknown_kind_and_missing_faiss_are_clear_errors(monkeypatch):
    items, _ = _clustered(n_items=50, n_users=1)
    with pytest.raises(ConfigError, match="Unknown approximate index"):
        ItemIndex(items, "annoy")
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(ConfigError, match="needs faiss-cpu") as caught:
        require_faiss()
    assert "mmrec[ann]" in caught.value.hint
