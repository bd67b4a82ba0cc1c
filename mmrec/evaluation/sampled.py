"""Sampled-negative evaluation (the `ranking` task): each test positive against N sampled negatives.

These numbers are NOT comparable to full ranking (they are much higher and can reorder models,
Krichene & Rendle 2020); reports label them `sampled_*`.
Per positive p with negatives n_1..n_N: rank = #{n: s(n) >= s(p)} (ties count against the model),
AUC = (#{s(n) < s(p)} + 0.5 #{s(n) = s(p)}) / N, HR@k = [rank < k], NDCG@k = [rank < k] / log2(rank + 2).
Averaged over positives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.errors import DataError

_MAX_REJECTION_ROUNDS = 50


def sample_negatives(
    pair_rows: np.ndarray,
    positives: sp.csr_matrix,
    num_negatives: int,
    strategy: str,
    popularity: np.ndarray,
    seed: int,
) -> np.ndarray:
    """[n_pairs, num_negatives] catalogue indices: per pair, distinct items (drawn without replacement), none of
    them a positive (any split) of the pair's user. Every pair's user must have num_negatives such items.

    strategy: "random" (uniform) or "popularity" (proportional to training count + 1).
    """
    n_items = positives.shape[1]
    free = n_items - np.diff(positives.indptr)[pair_rows]
    if (free < num_negatives).any():
        raise DataError(f"A test user has fewer than {num_negatives} items left to sample as negatives.")
    rng = np.random.default_rng(seed)
    weights = None
    if strategy == "popularity":
        weights = popularity.astype(np.float64) + 1.0
        weights /= weights.sum()
    negatives = rng.choice(n_items, size=(len(pair_rows), num_negatives), p=weights)
    pos_keys = np.unique(positives.tocoo().row.astype(np.int64) * n_items + positives.tocoo().col)
    rows = np.arange(len(pair_rows))
    for _ in range(_MAX_REJECTION_ROUNDS):
        # Redraw a user's positives and every repeat of an item already drawn for the pair (the first copy stays):
        # drawing until distinct is drawing without replacement, with the weights renormalised over what is left.
        bad = np.isin(pair_rows[:, None].astype(np.int64) * n_items + negatives, pos_keys)
        order = np.argsort(negatives, axis=1, kind="stable")
        ordered = np.take_along_axis(negatives, order, axis=1)
        repeat = np.zeros_like(bad)
        repeat[rows[:, None], order[:, 1:]] = ordered[:, 1:] == ordered[:, :-1]
        bad |= repeat
        if not bad.any():
            return negatives
        negatives[bad] = rng.choice(n_items, size=int(bad.sum()), p=weights)
    # Pairs still short (a user with nearly the whole catalogue as positives, or negatives close to what is left):
    # drawn exactly from the items they may take.
    for pair in np.flatnonzero(bad.any(1)):
        allowed = np.setdiff1d(np.arange(n_items), positives[pair_rows[pair]].indices)
        p = None if weights is None else weights[allowed] / weights[allowed].sum()
        negatives[pair] = rng.choice(allowed, size=num_negatives, replace=False, p=p)
    return negatives


def draw_pairs(relevant: sp.csr_matrix, exclude: sp.csr_matrix, num_negatives: int, strategy: str,
               popularity: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(pair rows, pair columns, [pairs, num_negatives] negatives, positives skipped): every test positive (row-major
    order) with the negatives it is ranked against, the same for every model; a user with fewer than num_negatives
    items outside their positives (any split) cannot get that many distinct negatives: their positives are skipped,
    counted. `evaluate --save-predictions` writes these pairs beside the lists."""
    relevant = sp.csr_matrix(relevant)
    coo = relevant.tocoo()
    order = np.lexsort((coo.col, coo.row))
    pair_rows, pair_cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    positives = sp.csr_matrix(relevant + exclude)
    short = positives.shape[1] - np.diff(positives.indptr) < num_negatives
    usable = ~short[pair_rows]
    skipped = int((~usable).sum())
    pair_rows, pair_cols = pair_rows[usable], pair_cols[usable]
    if len(pair_rows) == 0:
        return pair_rows, pair_cols, np.zeros((0, num_negatives), dtype=np.int64), skipped
    return pair_rows, pair_cols, sample_negatives(pair_rows, positives, num_negatives, strategy, popularity,
                                                  seed), skipped


def sampled_metrics(
    score_fn: Callable[[np.ndarray], torch.Tensor],
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix,
    k_values: Sequence[int],
    num_negatives: int,
    strategy: str,
    popularity: np.ndarray,
    seed: int = 42,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Mean sampled AUC / HR@k / NDCG@k over all test positives (see module docstring)."""
    pair_rows, pair_cols, negatives, skipped = draw_pairs(relevant, exclude, num_negatives, strategy, popularity, seed)
    if len(pair_rows) == 0:
        return {"sampled_users": 0.0, "sampled_skipped_positives": float(skipped)}
    ranks, aucs = [], []
    users = np.unique(pair_rows)
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        scores = score_fn(rows).to(device=device, dtype=torch.float32)
        in_batch = np.flatnonzero(np.isin(pair_rows, rows))
        local = torch.from_numpy(np.searchsorted(rows, pair_rows[in_batch])).to(device)
        pos = scores[local, torch.from_numpy(pair_cols[in_batch]).to(device)].unsqueeze(1)  # [p, 1]
        neg = scores[local.unsqueeze(1), torch.from_numpy(negatives[in_batch]).to(device)]  # [p, N]
        ranks.append((neg >= pos).sum(1).cpu())
        aucs.append(((neg < pos).double().sum(1) + 0.5 * (neg == pos).double().sum(1)).cpu() / num_negatives)
    rank = torch.cat(ranks).double()
    out = {"sampled_auc": float(torch.cat(aucs).mean())}
    for k in sorted(set(k_values)):
        inside = rank < k
        out[f"sampled_hit_rate@{k}"] = float(inside.double().mean())
        out[f"sampled_ndcg@{k}"] = float((inside.double() / torch.log2(rank + 2.0)).mean())
    out["sampled_positives"] = float(len(pair_rows))
    out["sampled_users"] = float(len(users))
    out["sampled_skipped_positives"] = float(skipped)
    return out
