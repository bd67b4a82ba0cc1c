"""Item -> next-item transitions as a blend component, for time-ordered interactions (model.sequence_blend).

With each user's training items in time order, T[i, j] sums 1 / d over every pair where j follows i
d <= window positions later in the same user's sequence; each row is then normalized to sum 1 (where
a user goes next after i, smoothed over the next `window` items). A user's scores are x_u T, x_u
her profile with recent items weighing more (half-life in items; mmrec.models.item_item.interaction_csr),
so the items that tend to come after what she did last rank first. Blended last, on top of the
two-tower / item-item / content blend, with a weight and half-life chosen on validation
(mmrec.training.blend), so on validation it never lowers the blend.

Directions "both" counts every pair within the window in either order (T[i, j] and T[j, i]), at weight
1 / d^2: items done close together in time, e.g. in one session, whichever came first. With the whole
profile weighing alike (half-life 0) it ranks the items done beside the user's items, the gaps a random
holdout leaves in her sessions; on random MovieLens splits it raised validation above EASE where next-item
transitions did not (bench/README.md, "Items done close together": the sharper 1 / d^2 led 1 / d there at
window 10, and ties it on time-ordered splits).

Memory is the number of distinct transitions (at most window x interactions, twice that for "both"), never
n_items^2.
Next items help when profiles end at the user's latest item, as `mmrec recommend` serves them (it fits on every
interaction); offline protocols that score test from train with validation items in between see less
of it (bench/README.md, "What validation can see of the temporal protocol's gap").
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mmrec.models.histories import IdEncoding, ordered_pairs
from mmrec.models.item_item import ItemItemModel, interaction_csr

Directions = Literal["next", "both"]

# (directions, profile half-life in items) and blend weights `mmrec train` tries on validation: next items
# from the latest ones, and the neighbours in time of the whole profile or of its latest items.
SEQUENCE_VARIANTS: tuple[tuple[Directions, float], ...] = (("next", 1.0), ("next", 3.0), ("both", 0.0), ("both", 1.0))
SEQUENCE_WEIGHTS = (0.05, 0.1, 0.2, 0.3, 0.5)


def describe_variant(directions: str, halflife: float) -> str:
    """What a transition variant ranks, for messages: 'next items, profile half-life 3', 'items done close
    together, whole profile'."""
    what = "items done close together" if directions == "both" else "next items"
    return f"{what}, {f'profile half-life {halflife:g}' if halflife > 0 else 'whole profile'}"


def transition_matrix(user_idx: np.ndarray, item_rows: np.ndarray, n_items: int, window: int,
                      directions: Directions = "next") -> sp.csr_matrix:
    """[n_items, n_items] float32 row-normalized T from (user, item) pairs given oldest first; directions
    "both" also counts each pair backwards (j came d <= window positions before i), each at 1 / d^2."""
    order = np.argsort(np.asarray(user_idx), kind="stable")  # per user, still oldest first
    users, items = np.asarray(user_idx)[order], np.asarray(item_rows)[order]
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for distance in range(1, max(int(window), 1) + 1):  # one distance at a time: peak memory ~ one pass's pairs
        # Pairs within one user's sequence; a repeated item is no transition.
        same = (users[distance:] == users[:-distance]) & (items[distance:] != items[:-distance])
        before, after = items[:-distance][same], items[distance:][same]
        weight = 1.0 / distance
        if directions == "both":
            before, after, weight = np.concatenate([before, after]), np.concatenate([after, before]), weight ** 2
        counts = counts + sp.csr_matrix((np.full(len(before), weight), (before, after)),
                                        shape=(n_items, n_items), dtype=np.float64)  # duplicates summed
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0))
    return (scale @ counts).astype(np.float32).tocsr()


def transition_model(train: pd.DataFrame, users: IdEncoding, rows: pd.Series, window: int, halflife: float,
                     device: torch.device | str = "cpu", directions: Directions = "next") -> ItemItemModel:
    """The transitions of `train` (its time order; profile row = user index in `users`) as a model scoring
    x_u T, with profiles at `halflife` (`with_profiles` gives other half-lives without a refit)."""
    user_idx, item_rows = ordered_pairs(train, users, rows)
    n_items = len(rows)
    matrix = transition_matrix(user_idx, item_rows, n_items, window, directions)
    transposed = matrix.T.tocsr()  # ItemItemModel keeps B^T for sparse B
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used are stable
        warnings.simplefilter("ignore", UserWarning)
        weights = torch.sparse_csr_tensor(torch.as_tensor(transposed.indptr, dtype=torch.int64),
                                          torch.as_tensor(transposed.indices, dtype=torch.int64),
                                          torch.as_tensor(transposed.data, dtype=torch.float32),
                                          size=(n_items, n_items), device=device)
    profiles = interaction_csr(user_idx, item_rows, len(users), n_items, halflife)
    return ItemItemModel(weights, profiles, matrix)
