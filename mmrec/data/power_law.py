"""Synthetic interactions at scale: an exact count of distinct pairs, power-law item popularity.

Used by `mmrec data synth --interactions N`. Everything is vectorised (no per-user Python loop),
so millions of users and interactions take seconds. Users keep the synth's taste model: 85% of a
user's interactions come from their two or three preferred categories.
"""

from __future__ import annotations

import numpy as np

from mmrec.errors import DataError

ITEM_EXPONENT = 1.0  # Zipf: the item at popularity rank r gets weight 1/r
USER_EXPONENT = 0.5  # user activity is heavy-tailed too, but milder
_PREFERRED_SHARE = 0.85
_MAX_ROUNDS = 50


def power_law_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Weights (mean 1) of a power law over `n` ranks, shuffled so rank is independent of index."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(weights / weights.mean())


def sample_interactions(
    rng: np.random.Generator,
    users: int,
    target: int,
    category: np.ndarray,
    popularity: np.ndarray,
    n_categories: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`target` distinct (user, item) pairs as (user index, item index, liked).

    `liked` says whether the item is in one of the user's preferred categories.
    """
    items = len(category)
    if target > users * items // 2:
        raise DataError(
            f"{target:,} interactions need more distinct user-item pairs than half of "
            f"{users:,} users x {items:,} items allows.",
            hint="Ask for fewer interactions, or more users or items.",
        )
    activity = np.minimum(power_law_weights(users, USER_EXPONENT, rng), items / 2 / target * users)
    user_cum = np.cumsum(activity) / activity.sum()
    # Two or three preferred categories per user, with Dirichlet weights (0 for an unused third).
    preferred = np.argsort(rng.random((users, n_categories)), axis=1)[:, :3]
    taste = rng.dirichlet(np.ones(3), size=users)
    taste[rng.random(users) < 0.5, 2] = 0.0
    taste_cum = np.cumsum(taste / taste.sum(axis=1, keepdims=True), axis=1)
    # Items ordered by category; category c's popularity CDF occupies [c, c + 1) of one array.
    order = np.argsort(category, kind="stable")
    sorted_category = category[order]
    sorted_pop = popularity[order]
    totals = np.bincount(sorted_category, weights=sorted_pop, minlength=n_categories)
    starts = np.repeat(np.cumsum(totals) - totals, np.bincount(sorted_category, minlength=n_categories))
    category_cum = sorted_category + (np.cumsum(sorted_pop) - starts) / totals[sorted_category]
    global_cum = np.cumsum(popularity) / popularity.sum()

    keys = np.empty(0, dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        need = target - len(keys)
        if need <= 0:
            break
        draws = int(need * 1.2) + 16
        user = np.minimum(np.searchsorted(user_cum, rng.random(draws)), users - 1)
        slot = np.minimum((rng.random(draws)[:, None] > taste_cum[user]).sum(axis=1), 2)
        chosen = preferred[user, slot]
        in_category = np.searchsorted(category_cum, chosen + rng.random(draws))
        anywhere = np.searchsorted(global_cum, rng.random(draws))
        from_taste = rng.random(draws) < _PREFERRED_SHARE
        in_category = order[np.minimum(in_category, items - 1)]
        pick = np.where(from_taste, in_category, np.minimum(anywhere, items - 1))
        keys = _first_unique(np.concatenate([keys, user * items + pick]))
    while len(keys) < target:  # the skewed draws saturate near the limit (heavy users run out of new items):
        # the rest uniformly over all pairs, at least half of which are free, so each round fills most of it.
        extra = rng.integers(0, users * items, size=2 * (target - len(keys)) + 16)
        keys = _first_unique(np.concatenate([keys, extra]))
    keys = keys[:target]
    user, item = keys // items, keys % items
    liked = ((preferred[user] == category[item][:, None]) & (taste[user] > 0)).any(axis=1)
    return user, item, liked


def _first_unique(keys: np.ndarray) -> np.ndarray:
    """`keys` without repeats, in order of first appearance."""
    _, first = np.unique(keys, return_index=True)
    return keys[np.sort(first)]
