"""Popularity baseline: items ranked by how often they were interacted with in training."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from mmrec.data.ids import positions
from mmrec.errors import ConfigError
from mmrec.recommenders.base import RECOMMENDERS, Recommender


def item_popularity(item_cols: np.ndarray, n_items: int, weights: np.ndarray | None = None) -> np.ndarray:
    """[n_items] float32 training interaction counts (or sums of `weights`) per catalogue column."""
    return np.bincount(item_cols, weights=weights, minlength=n_items).astype(np.float32)


def recency_weights(timestamps: np.ndarray, halflife_days: float) -> np.ndarray:
    """0.5^(age / half-life) per interaction, age in days before the newest one (unix-second timestamps)."""
    seconds = np.asarray(timestamps, dtype=np.float64)
    return np.exp2(-(seconds.max() - seconds) / (86400.0 * halflife_days)) if len(seconds) else seconds


class FallbackCounter:
    """Remembers which users were scored by a fallback, so reports can count them (never silently)."""

    def __init__(self) -> None:
        self.fallback_users: set[str] = set()

    @property
    def n_fallback_users(self) -> int:
        return len(self.fallback_users)


@RECOMMENDERS.register("popularity")
class PopularityRecommender(Recommender, FallbackCounter):
    """score(u, j) = number of training interactions of item j, the same for every user; with a half-life,
    each interaction counts 0.5^(age / half-life) (age before the newest one): what is popular lately.

    Ties (e.g. all never-seen items at 0) are broken by catalogue order through topk.
    """

    name = "popularity"

    def __init__(self, halflife_days: float | None = None) -> None:
        Recommender.__init__(self)
        FallbackCounter.__init__(self)
        self.halflife_days = halflife_days
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, train: pd.DataFrame, item_ids: Sequence[str]) -> PopularityRecommender:
        _, cols = self._index_catalogue(train, item_ids)
        weights = None
        if self.halflife_days is not None:
            if "timestamp" not in train.columns:
                raise ConfigError(
                    f"evaluation.popularity_halflife_days is {self.halflife_days:g}, but the interactions it is "
                    "fitted on have no timestamp column, so there is no age to weigh them by.",
                    hint="Give those interactions their times (data.timestamp_column, then preprocess and split "
                         "again; a --train-data file with its time column), or drop "
                         "evaluation.popularity_halflife_days.")
            known = positions(train["item_id"], self.item_ids) >= 0  # the rows `cols` holds, in order
            weights = recency_weights(train["timestamp"].to_numpy()[known], self.halflife_days)
        self.popularity = item_popularity(cols, self.n_items, weights)
        return self

    def score(self, user_ids: Sequence[str], device: torch.device | str = "cpu") -> torch.Tensor:
        row = torch.from_numpy(self.popularity).to(device)
        return row.unsqueeze(0).expand(len(user_ids), -1).clone()
