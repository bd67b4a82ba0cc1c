"""Sampled-negative evaluation: negatives avoid positives; AUC/HR/NDCG by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.evaluation.sampled import sample_negatives, sampled_metrics


@pytest.mark.parametrize("strategy", ["random", "popularity"])
def test_negatives_never_hit_any_positive(strategy):
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.6).astype(np.float32)
    dense[:, 11] = 0.0  # nobody has every item
    dense[0, :11] = 1.0  # a user with a single possible negative
    positives = sp.csr_matrix(dense)
    rows = np.repeat(np.arange(30), 3)
    negatives = sample_negatives(rows, positives, 8, strategy, np.arange(12, dtype=np.float32), seed=1)
    dense = positives.toarray() > 0
    assert negatives.shape == (90, 8)
    assert not dense[rows[:, None], negatives].any()
    assert (negatives[rows == 0] == 11).all()


def test_metrics_by_hand():
    # One user, items 0..4; positive = item 0; scores make it beat 2 of 4 possible negatives.
    scores = torch.tensor([[0.5, 0.9, 0.1, 0.7, 0.2]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
    exclude = sp.csr_matrix((1, 5), dtype=np.float32)
    out = sampled_metrics(lambda rows: scores[rows], relevant, exclude, [1, 3], num_negatives=4,
                          strategy="random", popularity=np.ones(5, np.float32), seed=0)
    # The negatives are drawn with replacement from {1,2,3,4}; check against the drawn set directly.
    negatives = sample_negatives(np.array([0]), relevant + exclude, 4, "random", np.ones(5, np.float32), 0)[0]
    neg_scores = scores[0, negatives]
    rank = int((neg_scores >= 0.5).sum())
    assert out["sampled_auc"] == pytest.approx(float((neg_scores < 0.5).float().mean()))
    assert out["sampled_hit_rate@3"] == float(rank < 3)
    assert out["sampled_ndcg@3"] == pytest.approx((1 / math.log2(rank + 2)) if rank < 3 else 0.0)


def test_batch_size_does_not_change_sampled_metrics():
    rng = np.random.default_rng(2)
    scores = torch.from_numpy(rng.standard_normal((25, 40)).astype(np.float32))
    relevant = sp.csr_matrix((rng.random((25, 40)) < 0.1).astype(np.float32))
    exclude = sp.csr_matrix((25, 40), dtype=np.float32)
    args = ([5, 10], 10, "popularity", rng.random(40).astype(np.float32))
    a = sampled_metrics(lambda r: scores[r], relevant, exclude, *args, seed=3, batch_size=4)
    b = sampled_metrics(lambda r: scores[r], relevant, exclude, *args, seed=3, batch_size=100)
    assert a == b


def test_user_with_every_item_is_skipped_and_counted():
    scores = torch.rand(2, 3)
    relevant = sp.csr_matrix(np.array([[1, 1, 1], [1, 0, 0]], dtype=np.float32))
    out = sampled_metrics(lambda r: scores[r], relevant, sp.csr_matrix((2, 3), dtype=np.float32), [1], 2,
                          "random", np.ones(3, np.float32))
    assert out["sampled_skipped_positives"] == 3.0 and out["sampled_positives"] == 1.0
