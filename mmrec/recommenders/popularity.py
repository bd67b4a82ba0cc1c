"""Popularity baseline: items ranked by how often they were interacted with in training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mmrec.recommenders.base import RECOMMENDERS, Recommender


def item_popularity(item_cols: np.ndarray, n_items: int) -> np.ndarray:
    """[n_items] float32 training interaction counts per catalogue column."""
    return np.bincount(item_cols, minlength=n_items).astype(np.float32)


class FallbackCounter:
    """Remembers which users were scored by a fallback, so reports can count them (never silently)."""

    def __init__(self) -> None:
        self.fallback_users: set[str] = set()

    @property
    def n_fallback_users(self) -> int:
        return len(self.fallback_users)


@RECOMMENDERS.register("popularity")
class PopularityRecommender(Recommender, FallbackCounter):
    """score(u, j) = number of training interactions of item j, the same for every user.

    Ties (e.g. all never-seen items at 0) are broken by catalogue order through topk.
    """

    name = "popularity"

    def __init__(self) -> None:
        Recommender.__init__(self)
        FallbackCounter.__init__(self)
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> PopularityRecommender:
        _, cols = self._index_catalogue(train, item_ids)
        self.popularity = item_popularity(cols, self.n_items)
        return self

    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        row = torch.from_numpy(self.popularity).to(device)
        return row.unsqueeze(0).expand(len(user_ids), -1).clone()
