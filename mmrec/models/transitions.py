"""Item -> next-item transitions as a blend component, for time-ordered interactions (model.sequence_blend).

With each user's training items in time order, T[i, j] sums 1 / d over every pair where j follows i
d <= window positions later in the same user's sequence; each row is then normalized to sum 1 (where
a user goes next after i, smoothed over the next `window` items). A user's scores are x_u T, x_u
her profile with recent items weighing more (half-life in items; mmrec.models.item_item.interaction_csr),
so the items that tend to come after what she did last rank first. Blended last, on top of the
two-tower / item-item / content blend, with a weight and half-life chosen on validation
(mmrec.training.blend), so on validation it never lowers the blend.

Memory is the number of distinct transitions (at most window x interactions), never n_items^2.
It helps when profiles end at the user's latest item, as `mmrec recommend` serves them (it fits on every
interaction); offline protocols that score test from train with validation items in between see less
of it (bench/README.md, "What validation can see of the temporal protocol's gap").
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from mmrec.models.histories import IdEncoding, ordered_pairs
from mmrec.models.item_item import ItemItemModel, interaction_csr

# Profile half-lives (in items) and blend weights `mmrec train` tries on validation.
SEQUENCE_HALFLIVES = (1.0, 3.0)
SEQUENCE_WEIGHTS = (0.05, 0.1, 0.2, 0.3)


def transition_matrix(user_idx: np.ndarray, item_rows: np.ndarray, n_items: int, window: int) -> sp.csr_matrix:
    """[n_items, n_items] float32 row-normalized T from (user, item) pairs given oldest first."""
    order = np.argsort(np.asarray(user_idx), kind="stable")  # per user, still oldest first
    users, items = np.asarray(user_idx)[order], np.asarray(item_rows)[order]
    counts = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for distance in range(1, max(int(window), 1) + 1):  # one distance at a time: peak memory ~ one pass's pairs
        # Pairs within one user's sequence; a repeated item is no transition.
        same = (users[distance:] == users[:-distance]) & (items[distance:] != items[:-distance])
        counts = counts + sp.csr_matrix((np.full(int(same.sum()), 1.0 / distance),
                                         (items[:-distance][same], items[distance:][same])),
                                        shape=(n_items, n_items), dtype=np.float64)  # duplicates summed
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = sp.diags(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0))
    return (scale @ counts).astype(np.float32).tocsr()


def transition_model(train: pd.DataFrame, users: IdEncoding, rows: pd.Series, window: int, halflife: float,
                     device: torch.device | str = "cpu") -> ItemItemModel:
    """The transitions of `train` (its time order; profile row = user index in `users`) as a model scoring
    x_u T, with profiles at `halflife` (`with_profiles` gives other half-lives without a refit)."""
    user_idx, item_rows = ordered_pairs(train, users, rows)
    n_items = len(rows)
    matrix = transition_matrix(user_idx, item_rows, n_items, window)
    transposed = matrix.T.tocsr()  # ItemItemModel keeps B^T for sparse B
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used are stable
        warnings.simplefilter("ignore", UserWarning)
        weights = torch.sparse_csr_tensor(torch.as_tensor(transposed.indptr, dtype=torch.int64),
                                          torch.as_tensor(transposed.indices, dtype=torch.int64),
                                          torch.as_tensor(transposed.data, dtype=torch.float32),
                                          size=(n_items, n_items), device=device)
    profiles = interaction_csr(user_idx, item_rows, len(users), n_items, halflife)
    return ItemItemModel(weights, profiles, matrix)
