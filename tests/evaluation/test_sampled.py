"""Sampled-negative evaluation: negatives avoid positives; AUC/HR/NDCG by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.errors import DataError
from mmrec.evaluation.sampled import sample_negatives, sampled_metrics


@pytest.mark.parametrize("strategy", ["random", "popularity"])
def test_negatives_are_distinct_and_never_hit_any_positive(strategy):
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 20)) < 0.4).astype(np.float32)
    dense[:, 12:] = 0.0  # every user has at least 8 items to sample
    dense[0, :12] = 1.0  # a user with exactly 8 possible negatives
    positives = sp.csr_matrix(dense)
    rows = np.repeat(np.arange(30), 3)
    negatives = sample_negatives(rows, positives, 8, strategy, np.arange(20, dtype=np.float32), seed=1)
    dense = positives.toarray() > 0
    assert negatives.shape == (90, 8)
    assert not dense[rows[:, None], negatives].any()
    assert all(len(set(row)) == 8 for row in negatives)  # without replacement
    assert all(sorted(row) == list(range(12, 20)) for row in negatives[rows == 0])


def test_more_negatives_than_a_user_has_left_is_refused():
    positives = sp.csr_matrix(np.array([[1, 1, 0, 0]], dtype=np.float32))
    with pytest.raises(DataError, match="fewer than 3 items"):
        sample_negatives(np.array([0]), positives, 3, "random", np.ones(4, np.float32), 0)


def test_metrics_by_hand():
    # One user, items 0..4; positive = item 0; 4 negatives drawn without replacement = all of items 1-4, of which
    # 2 (0.9, 0.7) score at least the positive's 0.5: rank 2.
    scores = torch.tensor([[0.5, 0.9, 0.1, 0.7, 0.2]])
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
    exclude = sp.csr_matrix((1, 5), dtype=np.float32)
    out = sampled_metrics(lambda rows: scores[rows], relevant, exclude, [1, 3], num_negatives=4,
                          strategy="random", popularity=np.ones(5, np.float32), seed=0)
    assert out["sampled_auc"] == pytest.approx(0.5)
    assert out["sampled_hit_rate@1"] == 0.0 and out["sampled_hit_rate@3"] == 1.0
    assert out["sampled_ndcg@3"] == pytest.approx(1 / math.log2(4))


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


def test_users_with_fewer_free_items_than_negatives_are_skipped_and_counted():
    scores = torch.rand(2, 6)
    relevant = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
    out = sampled_metrics(lambda r: scores[r], relevant, sp.csr_matrix((2, 6), dtype=np.float32), [1], 3,
                          "random", np.ones(6, np.float32))
    assert out["sampled_skipped_positives"] == 4.0 and out["sampled_positives"] == 1.0
