"""One metric implementation for every system: mmrec's `full_ranking`, plus its check against Cornac.

Validation ranks with train masked; test ranks with train + validation masked. In the coldstart
protocol only the held-out items are candidates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from bench.peers.protocols import Split
from mmrec.evaluation.full_ranking import full_ranking

# [len(rows)] user row indices -> [len(rows), n_items] scores, catalogue order, higher is better.
Scorer = Callable[[np.ndarray], np.ndarray]
K_VALUES = (10, 20)
REPORTED = ("ndcg@10", "ndcg@20", "recall@10", "recall@20", "precision@10", "hit_rate@10", "mrr")
SELECTION_METRIC = "ndcg@10"


def _torch_scores(scorer: Scorer) -> Callable[[np.ndarray], torch.Tensor]:
    return lambda rows: torch.as_tensor(np.asarray(scorer(rows), dtype=np.float32))


def evaluate(split: Split, scorer: Scorer, stage: str, batch_size: int = 512) -> dict[str, float]:
    """REPORTED metrics of `scorer` on split's "val" or "test" part, plus the evaluated user count."""
    return evaluate_per_user(split, scorer, stage, batch_size)[0]


def evaluate_per_user(split: Split, scorer: Scorer, stage: str,
                      batch_size: int = 512) -> tuple[dict[str, float], list[str], np.ndarray]:
    """`evaluate`, plus the evaluated users' ids and their NDCG@10 (for paired tests between systems)."""
    if stage == "val":
        relevant, exclude = split.matrices["val"], split.matrices["train"]
    elif stage == "test":
        relevant = split.matrices["test"]
        exclude = (split.matrices["train"] + split.matrices["val"]).tocsr()
    else:
        raise ValueError(f"stage must be 'val' or 'test', got {stage!r}")
    result = full_ranking(
        _torch_scores(scorer), relevant, exclude, K_VALUES, batch_size=batch_size, candidate_items=split.cold_items,
        return_per_user=True,
    )
    metrics = {name: result.metrics[name] for name in REPORTED}
    metrics["n_users"] = result.n_users
    users = [split.users[row] for row in result.users]
    return metrics, users, result.per_user[SELECTION_METRIC]


def check_against_cornac(split: Split, seed: int = 0, n_epochs: int = 20) -> dict[str, float]:
    """Fit Cornac BPR on split's train; compare our metrics with Cornac's ranking_eval on test.

    Both sides rank the same items: Cornac's known (training) items, train+val masked, unknown test
    items dropped (Cornac's `exclude_unknowns=True`). Returns {metric: |ours - cornac|}; raises
    AssertionError if any difference exceeds 1e-9.
    """
    from cornac.eval_methods import BaseMethod, ranking_eval
    from cornac.metrics import MRR, NDCG, HitRatio, Precision, Recall
    from cornac.models import BPR

    def triples(name: str) -> list[tuple[str, str, float]]:
        frame = split.frames[name]
        return list(zip(frame["user_id"], frame["item_id"], np.ones(len(frame))))

    method = BaseMethod.from_splits(
        triples("train"), triples("test"), triples("val"), exclude_unknowns=True, seed=seed, verbose=False
    )
    model = BPR(k=16, max_iter=n_epochs, seed=seed, verbose=False).fit(method.train_set)
    cut = [NDCG(10), NDCG(20), Recall(10), Recall(20), Precision(10), HitRatio(10)]
    names = ["ndcg@10", "ndcg@20", "recall@10", "recall@20", "precision@10", "hit_rate@10"]
    cornac_cut, _ = ranking_eval(model, cut, method.train_set, method.test_set, val_set=method.val_set)
    # MRR alone: with a cut-off metric present Cornac only sorts the top max_k, so ranks past it are arbitrary.
    cornac_mrr, _ = ranking_eval(model, [MRR()], method.train_set, method.test_set, val_set=method.val_set)
    cornac = dict(zip(names + ["mrr"], cornac_cut + cornac_mrr))

    n_users, n_items = method.total_users, method.train_set.num_items

    def square(matrix: sp.csr_matrix) -> sp.csr_matrix:
        coo = matrix.tocoo()
        keep = coo.col < n_items
        return sp.csr_matrix((np.ones(keep.sum()), (coo.row[keep], coo.col[keep])), shape=(n_users, n_items))

    relevant = square(method.test_set.csr_matrix)
    exclude = (square(method.train_set.csr_matrix) + square(method.val_set.csr_matrix)).tocsr()
    exclude.data[:] = 1.0
    all_scores = np.stack([model.score(u) if u < method.train_set.num_users else np.zeros(n_items)
                           for u in range(n_users)]).astype(np.float32)
    ours = full_ranking(
        lambda rows: torch.from_numpy(all_scores[rows]), relevant, exclude, K_VALUES
    ).metrics
    diffs = {name: abs(ours[name] - cornac[name]) for name in cornac}
    worst = max(diffs.values())
    if worst > 1e-9:
        raise AssertionError(f"metric disagreement with Cornac: {diffs} (ours {ours}, cornac {cornac})")
    return {"max_abs_diff": worst, "n_users": int(relevant.getnnz(axis=1).astype(bool).sum()), **{
        f"cornac_{k}": v for k, v in cornac.items()}}
