"""Full ranking: masking, batch-size independence, candidate restriction."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmrec.evaluation.full_ranking import full_ranking, relevant_among


def _problem(n_users=37, n_items=50, seed=0):
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((n_users, n_items)).astype(np.float32))
    relevant = sp.csr_matrix((rng.random((n_users, n_items)) < 0.08).astype(np.float32))
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(np.float32))
    exclude = exclude - exclude.multiply(relevant)  # an item is either seen or held out
    exclude.eliminate_zeros()
    return scores, relevant, exclude


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_identical_for_any_batch_size(batch_size):
    scores, relevant, exclude = _problem()
    ref = full_ranking(lambda rows: scores[rows], relevant, exclude, [5, 10], batch_size=64, return_topk=True)
    got = full_ranking(lambda rows: scores[rows], relevant, exclude, [5, 10], batch_size=batch_size, return_topk=True)
    assert got.metrics == ref.metrics  # bit-identical, not approximately equal
    np.testing.assert_array_equal(got.topk, ref.topk)


def test_matches_brute_force_and_masks_seen_items():
    scores, relevant, exclude = _problem(seed=1)
    result = full_ranking(lambda rows: scores[rows], relevant, exclude, [10], return_topk=True, return_per_user=True)
    rel, exc = relevant.toarray() > 0, exclude.toarray() > 0
    users = np.flatnonzero(rel.any(1))
    recalls, rrs = [], []
    for row, u in enumerate(users):
        s = scores[u].numpy().copy()
        s[exc[u]] = -np.inf
        order = np.argsort(-s, kind="stable")
        assert not exc[u][result.topk[row]].any()
        np.testing.assert_array_equal(result.topk_scores[row], s[result.topk[row]])  # the scores ranked by
        recalls.append(rel[u][order[:10]].sum() / rel[u].sum())
        rrs.append(1 / (1 + np.flatnonzero(rel[u][order])[0]))
    np.testing.assert_allclose(result.per_user["recall@10"], recalls)
    np.testing.assert_allclose(result.per_user["mrr"], rrs)
    assert result.n_users == len(users)


def test_candidate_items_restrict_the_ranking():
    scores, relevant, _ = _problem(seed=2)
    candidates = np.arange(0, 50, 2)
    result = full_ranking(lambda rows: scores[rows], relevant, None, [5], candidate_items=candidates, return_topk=True)
    assert np.isin(result.topk, candidates).all()


def test_constant_scores_earn_nothing_from_ties():
    # Every item scored the same: the relevant item must not be credited rank 1 (ties count against it),
    # neither in MRR nor in any top-K metric, wherever torch.topk happens to put it among its equals.
    n_items = 20
    relevant = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 1, 1], [0, 1, 2])), shape=(2, n_items))
    result = full_ranking(lambda rows: torch.zeros(len(rows), n_items), relevant, None, [5], batch_size=1)
    # user 0: 19 non-relevant items tied ahead -> rank 20; user 1: 18 ahead -> rank 19
    assert result.metrics["mrr"] == pytest.approx((1 / 20 + 1 / 19) / 2)
    assert all(result.metrics[f"{m}@5"] == 0.0 for m in ("precision", "recall", "ndcg", "hit_rate"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_metrics_break_ties_against_the_model(seed):
    # Integer scores from a handful of levels: runs of ties inside the top-K and across its K-th place.
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    scores = torch.from_numpy(rng.integers(0, 4, (n_users, n_items)).astype(np.float32))
    relevant = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2).astype(np.float32))
    exclude = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1).astype(np.float32))
    exclude = exclude - exclude.multiply(relevant)
    exclude.eliminate_zeros()
    result = full_ranking(lambda rows: scores[rows], relevant, exclude, [3, 10], batch_size=7, return_per_user=True)
    rel, exc = relevant.toarray() > 0, exclude.toarray() > 0
    expected = {"ndcg@3": [], "recall@10": [], "precision@3": [], "hit_rate@3": []}
    for u in np.flatnonzero(rel.any(1)):
        s = scores[u].numpy().copy()
        s[exc[u]] = -np.inf
        order = np.lexsort((rel[u], -s))  # by score, descending; among equals relevant last
        gains = rel[u][order].astype(float)
        ideal = sum(1 / np.log2(i + 2) for i in range(min(3, rel[u].sum())))
        expected["ndcg@3"].append(sum(g / np.log2(i + 2) for i, g in enumerate(gains[:3])) / ideal)
        expected["recall@10"].append(gains[:10].sum() / rel[u].sum())
        expected["precision@3"].append(gains[:3].sum() / 3)
        expected["hit_rate@3"].append(float(gains[:3].any()))
    for name, values in expected.items():
        np.testing.assert_allclose(result.per_user[name], values, err_msg=name)


def test_masking_never_writes_into_the_callers_tensor():
    # A score_fn returning a view of shared data (one popularity row expanded to every user).
    shared = torch.arange(6, dtype=torch.float32)
    relevant = sp.csr_matrix(([1.0, 1.0], ([0, 1], [0, 1])), shape=(2, 6))
    exclude = sp.csr_matrix(([1.0, 1.0], ([0, 1], [5, 4])), shape=(2, 6))
    result = full_ranking(lambda rows: shared.expand(len(rows), -1), relevant, exclude, [1], batch_size=2)
    assert shared.tolist() == [0, 1, 2, 3, 4, 5]
    # user 0 has item 5 masked -> top-1 is item 4; user 1 has item 4 masked -> top-1 is item 5
    assert result.n_users == 2 and result.metrics["hit_rate@1"] == 0.0


def test_places_filled_by_masked_items_are_left_out_of_saved_predictions(tmp_path):
    import json

    import scipy.sparse as sp

    from mmrec.evaluation.evaluator import ModelEvaluation
    from mmrec.evaluation.report import EvaluationReport, write_predictions

    scores = torch.arange(6, dtype=torch.float32).repeat(2, 1)
    relevant = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]], dtype=np.float32))
    exclude = sp.csr_matrix(np.array([[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=np.float32))  # u0: 2 left
    result = full_ranking(lambda rows: scores[rows], relevant, exclude, [4], return_topk=True)
    assert np.isinf(result.topk_scores[0, 2:]).all() and np.isfinite(result.topk_scores[1]).all()
    model = ModelEvaluation("m", result.metrics, topk=result.topk, topk_scores=result.topk_scores,
                            topk_rows=result.users)
    path = write_predictions(EvaluationReport("retrieval", [4], [model], {}), np.array(["u0", "u1"]),
                             [f"i{j}" for j in range(6)], tmp_path / "p.json")
    saved = json.loads(path.read_text())["m"]
    assert [i["item_id"] for i in saved["u0"]] == ["i1", "i0"] and len(saved["u1"]) == 4


def test_the_top_k_lists_and_coverage_are_the_same_whatever_other_k_are_asked():
    # Popularity ties many items: torch.topk picked among tied items differently for each largest K, so coverage@10
    # read 0.1800 with --k 10 and 0.1733 with --k 5 10 20 (same model, same split).
    from mmrec.evaluation.evaluator import catalogue_coverage
    from mmrec.inference.topk import top_k_unseen

    _, relevant, exclude = _problem(n_users=40, n_items=60, seed=3)
    popularity = torch.from_numpy(np.repeat(np.arange(12, dtype=np.float32), 5))  # 12 levels, 5 items each
    shuffled = popularity[torch.from_numpy(np.random.default_rng(0).permutation(60))]
    lists = {}
    for ks in ([10], [5, 10, 20], [10, 37]):
        got = full_ranking(lambda rows: shuffled.expand(len(rows), -1), relevant, exclude, ks, return_topk=True)
        lists[tuple(ks)] = got.topk[:, :10]
        assert catalogue_coverage(got.topk, 60, ks)["coverage@10"] == catalogue_coverage(lists[(10,)], 60, [10])[
            "coverage@10"]
    np.testing.assert_array_equal(lists[(5, 10, 20)], lists[(10,)])
    np.testing.assert_array_equal(lists[(10, 37)], lists[(10,)])
    seen = [exclude[u].indices for u in range(40)]
    served, _ = top_k_unseen(shuffled.expand(40, -1), seen, 10)  # what recommend lists
    np.testing.assert_array_equal(served.numpy(), lists[(10,)])


def test_ranked_among_some_items_a_user_is_measured_on_her_relevant_ones_among_them():
    relevant = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], dtype=np.float32))
    cold = np.array([2, 3])
    kept = relevant_among(relevant, cold)
    assert kept.shape == relevant.shape and kept.toarray().tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    assert relevant_among(relevant, None) is relevant
    # Users 0 and 2 are ranked among items 2 and 3; user 1 (none of hers there) drops out, not counted as a miss.
    scores = torch.tensor([[0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.5]])
    result = full_ranking(lambda rows: scores[torch.as_tensor(rows)], kept, None, [1], candidate_items=cold,
                          return_per_user=True)
    assert result.n_users == 2 and result.per_user["recall@1"].tolist() == [1.0, 0.0]
