"""Full-ranking evaluation: every user is ranked against the whole catalogue.

Users are processed in chunks of `batch_size` rows: score the chunk ([b, n_items] on the device),
mask each user's training/validation items with -inf, take top-K, look the top-K up in the
user's relevant set. Memory is O(batch_size * n_items) whatever the number of users, and the
result does not depend on the batch size (rows are independent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from mmrec.evaluation.metrics import count_compared, pessimistic_hits, reciprocal_rank, topk_metrics
from mmrec.inference.topk import MAX_SCORE_CELLS, rows_per_chunk, top_k

ScoreFn = Callable[[np.ndarray], torch.Tensor]


@dataclass
class RankingResult:
    """Mean metrics over evaluated users, plus optional per-user values and top-K lists."""

    metrics: dict[str, float]
    n_users: int
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    topk: np.ndarray | None = None  # [n_users, max_k] catalogue indices, rows as in `relevant`
    topk_scores: np.ndarray | None = None  # [n_users, max_k] their scores (-inf: a masked item filled the place)
    users: np.ndarray | None = None  # row indices of the evaluated users (those with >= 1 relevant)


def _row_coords(matrix: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local_row, col) coordinates of the non-zeros of `matrix[rows]`."""
    sub = matrix[rows]
    counts = np.diff(sub.indptr)
    local = np.repeat(np.arange(len(rows)), counts)
    return local, sub.indices


def full_ranking(
    score_fn: ScoreFn,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    k_values: Sequence[int],
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    candidate_items: np.ndarray | None = None,
    return_topk: bool = False,
    return_per_user: bool = False,
    max_score_cells: int = MAX_SCORE_CELLS,
) -> RankingResult:
    """Evaluate a recommender over all items.

    score_fn(rows) -> [len(rows), n_items] scores (higher is better) for row indices of `relevant`.
    relevant: [n_users, n_items] held-out positives; exclude: same shape, items to mask (seen).
    candidate_items: restrict the ranking to these catalogue indices (e.g. cold-start items).
    max_score_cells: cap on batch x n_items (64M cells = 256 MB of float32 scores), so memory stays
    bounded for any catalogue size; the batch shrinks to fit, which never changes the results.
    """
    (result,) = full_ranking_variants(lambda rows: iter((score_fn(rows),)), 1, relevant, exclude, k_values,
                                      batch_size, device, candidate_items, return_topk, return_per_user,
                                      max_score_cells)
    return result


def relevant_among(relevant: sp.csr_matrix, candidates: np.ndarray | None) -> sp.csr_matrix:
    """`relevant` with only its entries in the `candidates` columns (all of it without): ranked among some items
    (`candidate_items`), a user is measured on her relevant ones among them (users with none drop out)."""
    if candidates is None:
        return relevant
    keep = np.zeros(relevant.shape[1], dtype=bool)
    keep[np.asarray(candidates, dtype=np.int64)] = True
    kept = sp.csr_matrix(relevant).tocoo()
    inside = keep[kept.col]
    return sp.csr_matrix((kept.data[inside], (kept.row[inside], kept.col[inside])), shape=relevant.shape)


def full_ranking_variants(
    score_fn: Callable[[np.ndarray], Iterator[torch.Tensor]],
    n_variants: int,
    relevant: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    k_values: Sequence[int],
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    candidate_items: np.ndarray | None = None,
    return_topk: bool = False,
    return_per_user: bool = False,
    max_score_cells: int = MAX_SCORE_CELLS,
    matrices_per_chunk: int = 1,
) -> list[RankingResult]:
    """`full_ranking` of several score functions over the same users in one pass (e.g. a grid of blends).

    score_fn(rows) yields `n_variants` score matrices for those rows, one after another; each is ranked
    as full_ranking ranks it. `matrices_per_chunk` = how many [b, n_items] matrices the score function
    holds at once (shared components + the one yielded): the chunk shrinks so memory stays bounded.
    """
    device = torch.device(device)
    relevant = sp.csr_matrix(relevant)
    n_items = relevant.shape[1]
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != relevant.shape:
            raise ValueError(f"exclude shape {exclude.shape} != relevant shape {relevant.shape}")
    k_values = sorted({int(k) for k in k_values})
    batch_size = rows_per_chunk(batch_size, n_items, max(1, max_score_cells // max(1, matrices_per_chunk)))
    max_k = min(max(k_values), n_items)
    blocked: torch.Tensor | None = None
    if candidate_items is not None:
        blocked = torch.ones(n_items, dtype=torch.bool, device=device)
        blocked[torch.as_tensor(candidate_items, dtype=torch.long, device=device)] = False
        max_k = min(max(k_values), len(candidate_items))

    n_relevant_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant_all > 0)
    per_user: list[dict[str, list[np.ndarray]]] = [{} for _ in range(n_variants)]
    topk_rows: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_variants)]
    for start in range(0, len(users), batch_size):
        rows = users[start : start + batch_size]
        produced = 0
        for variant, scores in enumerate(score_fn(rows)):
            produced += 1
            _rank_chunk(scores.to(device=device, dtype=torch.float32), rows, relevant, exclude, blocked, k_values,
                        max_k, n_relevant_all, per_user[variant], topk_rows[variant] if return_topk else None)
            del scores  # free this chunk before the next one is allocated: peak = one chunk, not two
        if produced != n_variants:
            raise ValueError(f"score_fn yielded {produced} score matrices, expected {n_variants}")
    return [_result(parts, len(users), users, tops, return_per_user) for parts, tops in zip(per_user, topk_rows)]


def _rank_chunk(scores: torch.Tensor, rows: np.ndarray, relevant: sp.csr_matrix, exclude: sp.csr_matrix | None,
                blocked: torch.Tensor | None, k_values: list[int], max_k: int, n_relevant_all: np.ndarray,
                per_user: dict[str, list[np.ndarray]], topk_rows: list[tuple[np.ndarray, np.ndarray]] | None) -> None:
    """Mask, top-K and per-user metrics of one chunk's scores [len(rows), n_items], appended in place."""
    device, n_items = scores.device, relevant.shape[1]
    if scores.shape != (len(rows), n_items):
        raise ValueError(f"score_fn returned {tuple(scores.shape)}, expected {(len(rows), n_items)}")
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    if exclude is not None:
        r, c = _row_coords(exclude, rows)
        if len(r):
            if scores._base is not None or not scores.is_contiguous():
                # A view (e.g. popularity's expanded row) shares memory with the caller: masking
                # it in place would corrupt the caller's tensor and other users' rows. Fresh
                # matmul outputs own their memory and are masked without a copy.
                scores = scores.clone()
            scores[torch.from_numpy(r).to(device), torch.from_numpy(c).to(device)] = float("-inf")
    # One score past the top-K shows which rows' K-th score is tied beyond K (pessimistic ties, below).
    extra = int(max_k < n_items)
    top, top_values = top_k(scores, max_k + extra)  # [b, max_k (+ 1)]; ties in catalogue order, as recommend's
    tied_past_k = (top_values[:, -1] == top_values[:, -2]) if extra and max_k else None
    top_values, top = top_values[:, :max_k], top[:, :max_k]

    rel_r, rel_c = _row_coords(relevant, rows)
    rel_r_t = torch.from_numpy(rel_r).to(device)
    rel_c_t = torch.from_numpy(rel_c.astype(np.int64)).to(device)
    # Hit lookup without a dense [b, n_items] relevance matrix: compare flat (row, item) keys.
    rel_keys = rel_r_t * n_items + rel_c_t
    top_keys = torch.arange(len(rows), device=device).unsqueeze(1) * n_items + top
    hits = torch.isin(top_keys, rel_keys)
    n_rel = torch.from_numpy(n_relevant_all[rows]).to(device)

    rel_scores = scores[rel_r_t, rel_c_t]
    if max_k:
        last = top_values[:, -1]
        boundary_tied = (top_values == last.unsqueeze(1)).sum(1)
        if tied_past_k is not None and bool(tied_past_k.any()):
            rows_past = tied_past_k.nonzero().squeeze(1)
            boundary_tied[rows_past] = count_compared(scores[rows_past], last[rows_past].unsqueeze(1), torch.eq).to(
                boundary_tied.dtype)
        boundary_relevant = torch.zeros_like(boundary_tied).scatter_add(
            0, rel_r_t, (rel_scores == last[rel_r_t]).to(boundary_tied.dtype))
        hits = pessimistic_hits(hits, top_values, boundary_tied, boundary_relevant)
    batch = topk_metrics(hits, n_rel, k_values)
    best = torch.full((len(rows),), float("-inf"), device=device)
    best = best.scatter_reduce(0, rel_r_t, rel_scores, reduce="amax")
    tied = torch.zeros(len(rows), dtype=torch.int32, device=device)
    tied = tied.scatter_add(0, rel_r_t, (rel_scores == best[rel_r_t]).to(torch.int32))
    batch["mrr"] = reciprocal_rank(scores, best, top_values, tied)
    for name, values in batch.items():
        per_user.setdefault(name, []).append(values.cpu().numpy())
    if topk_rows is not None:
        topk_rows.append((top.cpu().numpy(), top_values.cpu().numpy()))


def _result(per_user: dict[str, list[np.ndarray]], n_users: int, users: np.ndarray,
            topk_rows: list[tuple[np.ndarray, np.ndarray]], return_per_user: bool) -> RankingResult:
    # Means over the concatenated per-user values: the same summation order for any batch size.
    values = {name: np.concatenate(parts) for name, parts in per_user.items()}
    metrics = {name: float(v.mean()) if len(v) else 0.0 for name, v in values.items()}
    return RankingResult(
        metrics=metrics,
        n_users=n_users,
        per_user=values if return_per_user else {},
        topk=np.concatenate([rows for rows, _ in topk_rows]) if topk_rows else None,
        topk_scores=np.concatenate([scores for _, scores in topk_rows]) if topk_rows else None,
        users=users,
    )
