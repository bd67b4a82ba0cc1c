"""Top-K ranking metrics, vectorized over a batch of users.

Definitions (binary relevance; R = the user's relevant items, |R| >= 1; hits@k = relevant items in
the top k):
- Precision@k = hits@k / k
- Recall@k    = hits@k / |R|
- NDCG@k      = DCG@k / IDCG@k, DCG@k = sum_{i<=k, item_i in R} 1 / log2(i + 1),
                IDCG@k = sum_{i <= min(|R|, k)} 1 / log2(i + 1)
- HitRate@k   = 1 if hits@k > 0 else 0
- MRR         = 1 / rank of the first relevant item in the FULL ranking (not cut at k)
Ties are broken against the model in every metric (pessimistic): items scored alike rank relevant
last, including items tied with the K-th score outside the top-K, so constant scores earn nothing
and an item's place among equals (the top-K list's order) never counts.
Users are averaged with equal weight; users without relevant items are not evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def topk_metrics(
    hits: torch.Tensor, n_relevant: torch.Tensor, k_values: Sequence[int]
) -> dict[str, torch.Tensor]:
    """Per-user metrics from a hit matrix.

    hits: [b, K] bool, hits[u, i] = the i-th ranked item of user u is relevant (K >= max(k_values)).
    n_relevant: [b] number of relevant items per user (>= 1).
    Returns {"precision@k": [b] float64, ...} for every k and metric.
    """
    hits = hits.to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    max_k = max(k_values)
    if hits.shape[1] < max_k:  # catalogue smaller than K: the missing ranks are misses
        hits = torch.nn.functional.pad(hits, (0, max_k - hits.shape[1]))
    discounts = _discounts(max_k, hits.device)
    ideal_cumulative = torch.cumsum(discounts, 0)  # [K]: IDCG for |R| = 1..K
    out: dict[str, torch.Tensor] = {}
    for k in k_values:
        top = hits[:, :k]
        n_hits = top.sum(1)
        ideal_len = torch.clamp(n_rel, max=k).long()
        idcg = ideal_cumulative[ideal_len - 1]
        out[f"precision@{k}"] = n_hits / k
        out[f"recall@{k}"] = n_hits / n_rel
        out[f"ndcg@{k}"] = (top * discounts[:k]).sum(1) / idcg
        out[f"hit_rate@{k}"] = (n_hits > 0).to(torch.float64)
    return out


def pessimistic_hits(hits: torch.Tensor, top_values: torch.Tensor, boundary_tied: torch.Tensor,
                     boundary_relevant: torch.Tensor) -> torch.Tensor:
    """The hit matrix of the top-K with ties broken against the model; [b, K] bool.

    hits [b, K]: relevance of the top-K in `top_k`'s order; top_values [b, K]: their scores (descending).
    Within each run of equal scores the misses move first. The run at the K-th score may continue past K:
    boundary_tied [b] counts the row's items scored exactly the K-th score (inside the top-K or not) and
    boundary_relevant [b] the relevant ones among them, so the run's slots inside the top-K hold
    max(0, slots - (boundary_tied - boundary_relevant)) hits, at its end.
    """
    b, k = hits.shape
    if k == 0:
        return hits
    runs = torch.zeros((b, k), dtype=torch.long, device=hits.device)
    runs[:, 1:] = (top_values[:, 1:] != top_values[:, :-1]).cumsum(1)  # run index, non-decreasing along a row
    order = torch.sort(runs * 2 + hits.long(), dim=1, stable=True).indices  # misses before hits within a run
    out = hits.gather(1, order)
    slots = (top_values == top_values[:, -1:]).sum(1)
    n_hits = (slots - (boundary_tied - boundary_relevant)).clamp(min=0)
    position = torch.arange(k, device=hits.device)
    in_last_run = position >= (k - slots).unsqueeze(1)
    return torch.where(in_last_run, position >= (k - n_hits).unsqueeze(1), out)


def reciprocal_rank(
    scores: torch.Tensor,
    best_relevant_score: torch.Tensor,
    top_values: torch.Tensor | None = None,
    tied_relevant: torch.Tensor | None = None,
) -> torch.Tensor:
    """1 / rank of the user's best relevant item, ties broken against it (pessimistic); [b] float64.

    rank = 1 + (items scored >= the best relevant score) - (relevant items scored exactly that), so
    a recommender that gives every item the same score gets rank = catalogue size, not 1.
    scores: [b, n_items] with excluded items already at -inf; best_relevant_score: [b].
    top_values: optional [b, K] top-K scores (descending) of the same rows. When a user's best relevant
    score is above their K-th top score, every item scored >= it is inside the top-K, so the count is
    read from top_values exactly; only the other rows need the full [b, n_items] pass.
    tied_relevant: [b] relevant items scored exactly the best relevant score (default 1).
    """
    best = best_relevant_score.unsqueeze(1)
    if top_values is None or top_values.shape[1] == 0:
        at_least = count_compared(scores, best, torch.ge)
    else:
        at_least = (top_values >= best).sum(1, dtype=torch.int32)
        outside = best.squeeze(1) <= top_values[:, -1]
        n_outside = int(outside.sum())
        if 4 * n_outside >= len(outside):  # copying most rows out would cost more than one full pass
            at_least = torch.where(outside, count_compared(scores, best, torch.ge), at_least)
        elif n_outside:
            rows = outside.nonzero().squeeze(1)
            at_least[rows] = count_compared(scores[rows], best[rows], torch.ge)
    tied = torch.ones_like(at_least) if tied_relevant is None else tied_relevant.to(at_least.dtype)
    return 1.0 / ((at_least - tied).clamp(min=0).to(torch.float64) + 1.0)


_WORDS_PER_GROUP = 255  # int64 words summed per group: each byte lane then stays <= 255 (no carries)


def count_compared(scores: torch.Tensor, threshold: torch.Tensor,
                   compare: Callable[..., torch.Tensor] = torch.gt) -> torch.Tensor:
    """[b] int32 count of `compare(scores [b, n], threshold [b, 1])` per row (torch.gt, torch.ge or torch.eq).

    On CPU, torch's bool->int reduction is slow (~3x a top-k), so the 0/1 flag bytes are summed as
    int64 words, 255 words at a time (every byte lane sums to <= 255, so lanes never carry), and the
    lanes are added up at the end: exact, and about 3x faster.
    """
    if scores.device.type != "cpu":
        return compare(scores, threshold).sum(1, dtype=torch.int32)
    b, n = scores.shape
    width = _WORDS_PER_GROUP * 8
    padded = -(-n // width) * width
    flags = torch.empty(b, padded, dtype=torch.bool)
    flags[:, n:] = False
    compare(scores, threshold, out=flags[:, :n])
    words = flags.view(torch.int64).view(b, padded // width, _WORDS_PER_GROUP)
    return words.sum(2).view(torch.uint8).view(b, -1).sum(1, dtype=torch.int32)


def paired_gain_se(after: np.ndarray, before: np.ndarray) -> float:
    """Mean per-user gain of `after` over `before` (one metric value per user, same users in the same
    order) in standard errors of the paired differences: +-inf when every user moves alike, 0 when none
    moves. `mmrec tune` ties trials and the transition blend is kept by comparing it with a threshold."""
    diff = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    mean = float(diff.mean()) if len(diff) else 0.0
    se = float(diff.std(ddof=1)) / math.sqrt(len(diff)) if len(diff) > 1 else 0.0
    if se == 0.0:
        return math.copysign(math.inf, mean) if mean != 0.0 else 0.0
    return mean / se


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """`a` minus `b` (one metric value per user, same users in the same order): the mean difference, its 95%
    confidence interval and the two-sided p-value of a paired test that it is 0 (normal approximation of the
    paired t-test: users are many), and how many users."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    se = float(diff.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    if se == 0.0:
        p_value = 1.0 if mean == 0.0 else 0.0
    else:
        p_value = math.erfc(abs(mean / se) / math.sqrt(2.0))
    return {"difference": mean, "ci_low": mean - 1.96 * se, "ci_high": mean + 1.96 * se, "p_value": p_value,
            "users": n}
