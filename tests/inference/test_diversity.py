"""MMR re-ranking and intra-list diversity."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.inference.diversity import (
    embedding_similarity,
    interaction_similarity,
    intra_list_diversity,
    mmr_rerank,
)


def test_intra_list_diversity_by_hand():
    sims = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 1.0], [0.0, 1.0, 1.0]])
    # pairs: (0,1) 0.5, (0,2) 1.0, (1,2) 0.0 -> mean 0.5
    assert intra_list_diversity(sims) == pytest.approx(0.5)
    assert intra_list_diversity(np.ones((1, 1))) == 0.0


def test_mmr_trades_relevance_for_diversity():
    # Items 0 and 1 are near-duplicates and the two most relevant; item 2 is different.
    vectors = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0]])
    sims = embedding_similarity(vectors)(np.arange(3))
    relevance = np.array([1.0, 0.95, 0.6])
    assert mmr_rerank(relevance, sims, 2, lam=1.0).tolist() == [0, 1]  # relevance only
    diverse = mmr_rerank(relevance, sims, 2, lam=0.5)
    assert diverse.tolist() == [0, 2]
    before = intra_list_diversity(sims[np.ix_([0, 1], [0, 1])])
    after = intra_list_diversity(sims[np.ix_(diverse, diverse)])
    assert after > before


def test_a_reranked_list_is_never_less_diverse_than_the_plain_top_k():
    # Greedy MMR on these lists picks [0, 5, 1, 2] (it minds the largest similarity, not the mean), which is
    # less diverse than the plain top 4: the plain top 4 is returned then.
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(8, 3))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims, relevance = vectors @ vectors.T, np.sort(rng.random(8))[::-1]
    assert mmr_rerank(relevance, sims, 4, 0.7).tolist() == [0, 1, 2, 3]
    for seed in range(50):
        rng = np.random.default_rng(seed)
        vectors = rng.normal(size=(12, 3))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        sims, relevance = vectors @ vectors.T, np.sort(rng.random(12))[::-1]
        order, plain = mmr_rerank(relevance, sims, 5, 0.6), np.arange(5)
        assert intra_list_diversity(sims[np.ix_(order, order)]) >= intra_list_diversity(sims[np.ix_(plain, plain)])


def test_mmr_returns_each_candidate_once():
    rng = np.random.default_rng(0)
    vectors = torch.from_numpy(rng.standard_normal((20, 4)).astype(np.float32))
    order = mmr_rerank(rng.random(20), embedding_similarity(vectors)(np.arange(20)), 20, 0.3)
    assert sorted(order.tolist()) == list(range(20))


def test_interaction_similarity_is_column_cosine():
    matrix = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=np.float32))
    sims = interaction_similarity(matrix)(np.array([0, 2]))
    np.testing.assert_allclose(sims, [[1.0, 0.5], [0.5, 1.0]])
