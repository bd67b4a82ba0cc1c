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
    """[n_pairs, num_negatives] catalogue indices, none of them a positive (any split) of the pair's user.

    strategy: "random" (uniform) or "popularity" (proportional to training count + 1).
    """
    n_items = positives.shape[1]
    if (np.diff(positives.indptr)[np.unique(pair_rows)] >= n_items).any():
        raise DataError("A test user has interacted with every catalogue item; no negatives can be sampled.")
    rng = np.random.default_rng(seed)
    weights = None
    if strategy == "popularity":
        weights = popularity.astype(np.float64) + 1.0
        weights /= weights.sum()
    negatives = rng.choice(n_items, size=(len(pair_rows), num_negatives), p=weights)
    pos_keys = np.unique(positives.tocoo().row.astype(np.int64) * n_items + positives.tocoo().col)
    for _ in range(_MAX_REJECTION_ROUNDS):
        bad = np.isin(pair_rows[:, None].astype(np.int64) * n_items + negatives, pos_keys)
        if not bad.any():
            return negatives
        negatives[bad] = rng.choice(n_items, size=int(bad.sum()), p=weights)
    # Users with nearly the whole catalogue as positives: draw exactly from what is left.
    for pair, row in enumerate(pair_rows):
        bad_cols = np.flatnonzero(np.isin(row * n_items + negatives[pair], pos_keys))
        if len(bad_cols):
            allowed = np.setdiff1d(np.arange(n_items), positives[row].indices)
            negatives[pair, bad_cols] = rng.choice(allowed, size=len(bad_cols))
    return negatives


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
    relevant = sp.csr_matrix(relevant)
    coo = relevant.tocoo()
    order = np.lexsort((coo.col, coo.row))
    pair_rows, pair_cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    positives = sp.csr_matrix(relevant + exclude)
    # A user who interacted with the whole catalogue has no negatives: those positives are skipped, counted.
    saturated = np.diff(positives.indptr) >= positives.shape[1]
    usable = ~saturated[pair_rows]
    skipped = int((~usable).sum())
    pair_rows, pair_cols = pair_rows[usable], pair_cols[usable]
    if len(pair_rows) == 0:
        return {"sampled_skipped_positives": float(skipped)}
    negatives = sample_negatives(pair_rows, positives, num_negatives, strategy, popularity, seed)
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
    out["sampled_skipped_positives"] = float(skipped)
    return out
