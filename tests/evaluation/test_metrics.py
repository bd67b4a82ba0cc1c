"""Metrics against a hand-worked fixture and scikit-learn's ndcg_score."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from mmrec.evaluation.metrics import paired_difference, paired_gain_se, reciprocal_rank, topk_metrics


def test_hand_worked_fixture():
    # User 0: relevant {A, C, E} (|R|=3); ranking A B C D E -> hits 1 0 1 0 1.
    # User 1: relevant {Z} (|R|=1), ranked 2nd -> hits 0 1 0 0 0.
    hits = torch.tensor([[1, 0, 1, 0, 1], [0, 1, 0, 0, 0]], dtype=torch.bool)
    n_rel = torch.tensor([3, 1])
    out = topk_metrics(hits, n_rel, [1, 3, 5])
    d = [1 / math.log2(i + 1) for i in range(1, 6)]  # 1, 0.6309, 0.5, 0.4307, 0.3869
    expected = {
        "precision@1": [1.0, 0.0], "precision@3": [2 / 3, 1 / 3], "precision@5": [3 / 5, 1 / 5],
        "recall@1": [1 / 3, 0.0], "recall@3": [2 / 3, 1.0], "recall@5": [1.0, 1.0],
        "hit_rate@1": [1.0, 0.0], "hit_rate@3": [1.0, 1.0], "hit_rate@5": [1.0, 1.0],
        # IDCG uses min(|R|, k) ideal positions.
        "ndcg@1": [1.0, 0.0],
        "ndcg@3": [(d[0] + d[2]) / (d[0] + d[1] + d[2]), d[1] / d[0]],
        "ndcg@5": [(d[0] + d[2] + d[4]) / (d[0] + d[1] + d[2]), d[1] / d[0]],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(out[name].numpy(), values, rtol=1e-12, err_msg=name)


def test_reciprocal_rank_counts_items_strictly_above():
    scores = torch.tensor([[0.9, 0.5, float("-inf"), 0.7], [0.1, 0.2, 0.3, 0.4]])
    best = torch.tensor([0.5, 0.4])  # user 0's best relevant item is 3rd; user 1's is 1st
    np.testing.assert_allclose(reciprocal_rank(scores, best).numpy(), [1 / 3, 1.0])


def test_catalogue_smaller_than_k_counts_missing_ranks_as_misses():
    out = topk_metrics(torch.tensor([[True, False]]), torch.tensor([1]), [5])
    assert out["precision@5"].item() == pytest.approx(1 / 5)
    assert out["recall@5"].item() == 1.0


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_agrees_with_sklearn(seed):
    # With binary relevance, distinct scores and |R| <= k, sklearn's ndcg_score@k has the same
    # ideal DCG as ours (sklearn's ideal ranking is cut at k too), so the values must coincide.
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 20, 30, 10
    scores = rng.random((n_users, n_items))
    relevance = np.zeros((n_users, n_items))
    for u in range(n_users):
        relevance[u, rng.choice(n_items, size=rng.integers(1, 12), replace=False)] = 1
    order = np.argsort(-scores, axis=1)
    hits = torch.from_numpy(np.take_along_axis(relevance, order, axis=1)[:, :k] > 0)
    ours = topk_metrics(hits, torch.from_numpy(relevance.sum(1)), [k])[f"ndcg@{k}"].numpy()
    reference = [ndcg_score(relevance[[u]], scores[[u]], k=k) for u in range(n_users)]
    np.testing.assert_allclose(ours, reference, rtol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_reciprocal_rank_shortcut_equals_full_count(seed):
    # Ties (integer scores) and -inf masks included: the top-K shortcut must not change any value.
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (50, 40), generator=gen).float()
    scores[scores == 0] = float("-inf")
    best = torch.randint(0, 6, (50,), generator=gen).float()
    best[best == 0] = float("-inf")
    top_values = torch.topk(scores, 5, dim=1).values
    torch.testing.assert_close(reciprocal_rank(scores, best, top_values), reciprocal_rank(scores, best))


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 2040), (4, 2041), (6, 5000)])
def test_count_above_is_exact(shape):
    from mmrec.evaluation.metrics import count_compared as _count_above

    gen = torch.Generator().manual_seed(shape[1])
    scores = torch.randint(-3, 4, shape, generator=gen).float()
    scores[scores == -3] = float("-inf")
    threshold = torch.randint(-3, 4, (shape[0], 1), generator=gen).float()
    expected = (scores > threshold).sum(1)
    assert torch.equal(_count_above(scores, threshold).long(), expected)
    # All-true rows (maximum count) must not overflow a byte lane either.
    assert _count_above(torch.ones(2, shape[1]), torch.zeros(2, 1)).tolist() == [shape[1]] * 2
    for compare in (torch.ge, torch.eq):  # the other comparisons share the byte-lane sum
        assert torch.equal(_count_above(scores, threshold, compare).long(), compare(scores, threshold).sum(1))


@pytest.mark.parametrize("n_outside", [0, 3, 40])
def test_reciprocal_rank_both_shortcut_paths(n_outside):
    # Few rows outside the top-K take the row-subset path, many take the full pass: same answers.
    gen = torch.Generator().manual_seed(n_outside)
    scores = torch.rand(40, 100, generator=gen)
    top_values = torch.topk(scores, 5, dim=1).values
    best = top_values[:, 2].clone()  # inside the top-5
    best[:n_outside] = scores[:n_outside].min(1).values  # far outside
    expected = 1.0 / ((scores > best.unsqueeze(1)).sum(1).double() + 1.0)
    torch.testing.assert_close(reciprocal_rank(scores, best, top_values), expected)


def test_paired_gain_in_standard_errors():
    after, before = np.array([0.5, 0.4, 0.3, 0.6]), np.array([0.4, 0.4, 0.1, 0.5])
    diff = after - before
    assert paired_gain_se(after, before) == pytest.approx(diff.mean() / (diff.std(ddof=1) / 2))
    assert paired_gain_se(before, after) == pytest.approx(-paired_gain_se(after, before))
    exact = np.array([0.25, 0.5, 0.0, 0.75])
    assert paired_gain_se(exact + 0.25, exact) == math.inf and paired_gain_se(exact, exact + 0.25) == -math.inf
    assert paired_gain_se(exact, exact) == 0.0  # nobody moves


def test_paired_difference_gives_the_mean_its_interval_and_a_p_value():
    rng = np.random.default_rng(0)
    a = rng.random(400)
    shifted = paired_difference(a + 0.05 + rng.normal(0, 0.1, 400), a)
    assert shifted["difference"] == pytest.approx(0.05, abs=0.015) and shifted["users"] == 400
    assert shifted["ci_low"] > 0 and shifted["p_value"] < 1e-6
    noise = paired_difference(a + rng.normal(0, 0.1, 400), a)
    assert noise["ci_low"] < 0 < noise["ci_high"] and noise["p_value"] > 0.05
    assert paired_difference(a, a)["p_value"] == 1.0 and paired_difference(a + 1, a)["p_value"] == 0.0
    # The p-value is the two-sided normal tail of mean / SE.
    z = shifted["difference"] / ((shifted["ci_high"] - shifted["difference"]) / 1.96)
    assert shifted["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
