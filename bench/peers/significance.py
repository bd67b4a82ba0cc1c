"""Paired per-user comparison of two systems on the same test users (Wilcoxon signed-rank)."""

from __future__ import annotations

from typing import Any

import numpy as np


def paired_wilcoxon(users_a: list[str], values_a: list[float],
                    users_b: list[str], values_b: list[float]) -> dict[str, Any]:
    """Two-sided Wilcoxon signed-rank test of a vs b over the users both were evaluated on.

    Both systems rank the same split, so the user sets must be identical; ValueError otherwise.
    Zero differences are dropped (scipy's default `wilcox`); when every difference is zero, p = 1.
    """
    from scipy.stats import wilcoxon

    a = dict(zip(users_a, values_a, strict=True))
    b = dict(zip(users_b, values_b, strict=True))
    if set(a) != set(b):
        raise ValueError(f"paired test needs the same users: {len(set(a) ^ set(b))} users differ")
    users = sorted(a)
    x = np.array([a[u] for u in users], dtype=np.float64)
    y = np.array([b[u] for u in users], dtype=np.float64)
    diff = x - y
    p_value = 1.0 if not np.any(diff) else float(wilcoxon(x, y).pvalue)
    return {"n_users": len(users), "mean_a": float(x.mean()) if len(x) else 0.0,
            "mean_b": float(y.mean()) if len(y) else 0.0, "mean_diff": float(diff.mean()) if len(x) else 0.0,
            "wins": int((diff > 0).sum()), "losses": int((diff < 0).sum()), "ties": int((diff == 0).sum()),
            "p_value": p_value}


def pooled_over_seeds(pairs: list[tuple[list[str], list[float], list[str], list[float]]]) -> dict[str, Any]:
    """Paired Wilcoxon of a vs b on each user's NDCG averaged over the seeds (split and model seeds).

    `pairs` holds one (users_a, values_a, users_b, values_b) per seed, each pair ranking the same users (as
    `paired_wilcoxon` requires). A user's value is the mean over the seeds that tested them, for both systems
    alike, so the test stays paired: it asks whether a beats b per user once the seed-to-seed noise of training
    (and, where the seed changes the split, of the split) has been averaged out, one test over all seeds.
    """
    sums_a: dict[str, float] = {}
    sums_b: dict[str, float] = {}
    counts: dict[str, int] = {}
    for users_a, values_a, users_b, values_b in pairs:
        a = dict(zip(users_a, values_a, strict=True))
        b = dict(zip(users_b, values_b, strict=True))
        if set(a) != set(b):
            raise ValueError(f"paired test needs the same users: {len(set(a) ^ set(b))} users differ")
        for user in a:
            sums_a[user] = sums_a.get(user, 0.0) + a[user]
            sums_b[user] = sums_b.get(user, 0.0) + b[user]
            counts[user] = counts.get(user, 0) + 1
    users = sorted(counts)
    result = paired_wilcoxon(users, [sums_a[u] / counts[u] for u in users],
                             users, [sums_b[u] / counts[u] for u in users])
    return {**result, "seeds": len(pairs)}
