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
